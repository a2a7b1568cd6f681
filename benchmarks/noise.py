"""Run-to-run noise of the single-number metrics, the figures behind the `noise` of bench.catalogue's metrics.

    scripts/bench run --profile smoke --dataset synthetic --repeats 4 --out /tmp/noise
    $BENCH_PY -m benchmarks.noise /tmp/noise/RUN_ID

prints, per framework and task, the coefficient of variation across repeats (each a fresh process) of peak memory,
import time and first step, and the largest of each: the constants should sit at or above those.
"""
from __future__ import annotations

import sys

import numpy as np

from bench import aggregate, catalogue
from bench.results import RunStore, run_folder

#: The catalogue's metrics compared through a noise figure (no samples of their own within a cell).
METRICS = tuple(metric.name for metric in catalogue.CRITERIA if metric.noise is not None)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m benchmarks.noise RUN_FOLDER", file=sys.stderr)
        return 2
    folder = run_folder(argv[1], "results")
    groups = aggregate.group(RunStore.open(folder.parent, folder.name).cells())
    worst = dict.fromkeys(METRICS, 0.0)
    print("| framework | task | repeats | " + " | ".join(f"CV {name}" for name in METRICS) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in METRICS) + " |")
    for group in sorted(groups, key=lambda g: (g.task, g.framework)):
        cvs = []
        for name in METRICS:
            values = np.asarray(group.values(name), float)
            cv = values.std(ddof=1) / values.mean() if values.size > 1 else float("nan")
            worst[name] = max(worst[name], cv) if np.isfinite(cv) else worst[name]
            cvs.append(f"{cv:.1%}")
        print(f"| {group.framework} | {group.task} | {len(group.ok)} | " + " | ".join(cvs) + " |")
    print("largest: " + ", ".join(f"{name} {cv:.1%}" for name, cv in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
