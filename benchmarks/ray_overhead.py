"""What dispatching a cell through Ray costs against the local runner, on one machine, in one run of this script.

    BENCH_EXTRAS=test,ray scripts/bench list >/dev/null   # the harness environment with Ray
    $BENCH_PY -m benchmarks.ray_overhead [CELLS]

runs the same small matrix (PyTorch, mnist_mlp, smoke profile, synthetic data, CELLS repeats; default 6) with
`--executor local`, then `--executor ray` (a local Ray instance the run starts and stops), alternating twice, and
prints per executor the whole run's wall time, the cells' own wall time (each cell's process, from its records)
and the difference per cell: what the executor adds around a cell, the harness's own start and the report
included. The Ray run's time includes starting and stopping its local instance, spread over the cells.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.registry import SOURCE_ROOT

MATRIX = ["--frameworks", "pytorch", "--tasks", "mnist_mlp", "--profile", "smoke", "--dataset", "synthetic"]


def one_run(executor: str, cells: int) -> tuple[float, float]:
    """(the run's wall seconds, the sum of its cells' own wall seconds)."""
    with tempfile.TemporaryDirectory(prefix="bench-ray-overhead-") as folder:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench", "run", *MATRIX, "--repeats", str(cells), "--executor",
                        executor, "--out", f"{folder}/results", "--reports", f"{folder}/reports"],
                       cwd=SOURCE_ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - started
        records = [json.loads(path.read_text()) for path in Path(folder).glob("results/*/cells/*.json")]
        assert len(records) == cells and all(r["status"] == "ok" for r in records)
        return wall, sum(r["wall_time_s"] for r in records)


def main(argv: list[str]) -> int:
    cells = int(argv[1]) if len(argv) > 1 else 6
    found: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
    for _ in range(2):
        for executor in found:
            found[executor].append(one_run(executor, cells))
    print(f"| executor | run wall s | cells' own wall s | added per cell s ({cells} cells, best of 2) |")
    print("| --- | ---: | ---: | ---: |")
    for executor, runs in found.items():
        wall, own = min(runs)
        print(f"| {executor} | {wall:.1f} | {own:.1f} | {(wall - own) / cells:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
