"""Everything that runs inside a framework's environment, in a cell's own process: NumPy and the standard library
only (it must run on MXNet's numpy 1.23.5), and never the harness (`bench`), which it does not import.

- `contract`: the Adapter a framework implements, and the Clock it is handed;
- `clock`: the throughput clock; `loop`: the training loop, evaluation, latency, the matmul peak;
- `spec`: the common task spec; `data` and `formats`: reading the datasets, subsets, synthetic data;
- `child`: the entry point (`python -m frameworks.child CONFIG`); `protocol`: its hand-off with the harness;
  `lifeline`: it dies with its harness; `errors`: the error tiers both sides share;
- `pytorch`, `tensorflow`, `keras`, `mxnet`, `paddle`: the adapters, one file each, readable side by side.
"""
