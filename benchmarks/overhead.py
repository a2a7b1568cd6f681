"""Is the harness what is measured? Its steady-state training throughput against a hand-written loop, per framework.

`$BENCH_PY -m benchmarks.overhead [--frameworks a,b] [--rounds N] [--steps N] [--out PATH]`, from the repository
root. For each framework whose environment is set up, one child process (`benchmarks.overhead_child`, in that
framework's environment, started as the runner starts a cell) trains mnist_mlp in native mode alternately through
the harness (adapter + `frameworks.loop`) and through the framework's minimal hand loop (`benchmarks.hand_loops`), on
the same batches. Throughputs vary with the machine: on 2 shared cores they move by ±30 % from one second to the
next (measured), so rounds are short (60 steps a side) and many (30), each pair close in time, and the overhead
is 1 - harness / hand from the median of the per-round ratios, with its 95 % interval. The verdict is decided
only at 95 %, as every comparison in the project (bench.stats.compare calls a difference a tie otherwise): "within"
the limit when the whole interval is at or below LIMIT_PERCENT, "OVER" when the whole interval is above it, else
"undecided" (more rounds narrow the interval). Prints a Markdown table, writes the figures as JSON, and exits 1
if any framework is OVER or its child failed, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

from bench import envs, stats
from bench.registry import FRAMEWORKS, SOURCE_ROOT, resolve_framework
from bench.runner import child_environment
from bench.settings import split_list
from frameworks import clock
from frameworks.errors import UserError

LIMIT_PERCENT = 3.0
CHILD_TIMEOUT_S = 900
EXIT_OVER_LIMIT, EXIT_USER_ERROR = 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as the bench CLI: no usage dump
        raise UserError(message)


def _whole_number(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, received {value}")
        return value
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m benchmarks.overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", help=f"comma-separated; default: every one set up ({', '.join(FRAMEWORKS)})")
    parser.add_argument("--rounds", type=_whole_number(1), default=30,
                        help="harness/hand pairs per framework, alternating which goes first (default 30)")
    parser.add_argument("--steps", type=_whole_number(clock.WARMUP_STEPS), default=60,
                        help=f"timed steps per side and round, after {clock.WARMUP_STEPS} warm-up steps (default 60)")
    parser.add_argument("--out", help="JSON figures (default results/overhead-<UTC timestamp>.json)")
    args = parser.parse_args(argv)
    args.frameworks = [resolve_framework(name).name for name in split_list(args.frameworks)] or list(FRAMEWORKS)
    return args


def run_child(name: str, python: str, rounds: int, steps: int) -> dict:
    """The child's JSON line, or {"error": why} if it failed."""
    command = [python, "-m", "benchmarks.overhead_child", "--adapter", FRAMEWORKS[name].adapter,
               "--rounds", str(rounds), "--steps", str(steps)]
    try:
        completed = subprocess.run(command, cwd=SOURCE_ROOT, env=child_environment(name), stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {CHILD_TIMEOUT_S} s"}
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        last = (completed.stderr.strip() or f"exit code {completed.returncode}").splitlines()[-1]
        return {"error": f"child exited with {completed.returncode}: {last}"}
    return json.loads(lines[-1])


def verdict(ci_low: float, ci_high: float) -> str:
    """Where the overhead's 95 % interval lies against LIMIT_PERCENT."""
    return "within" if ci_high <= LIMIT_PERCENT else "OVER" if ci_low > LIMIT_PERCENT else "undecided"


def summarize(figures: dict) -> dict:
    """Medians of each side; the overhead from the median of the per-round ratios (noise cancels within a pair),
    with the distribution-free 95 % interval of that median (bench.stats, as a cell's throughput)."""
    harness, hand = figures["harness_rounds_samples_per_s"], figures["hand_rounds_samples_per_s"]
    ratios = stats.summarize([h / d for h, d in zip(harness, hand)])
    ci_low, ci_high = (1 - ratios.ci_high) * 100, (1 - ratios.ci_low) * 100
    return {"harness_samples_per_s": median(harness), "hand_samples_per_s": median(hand),
            "overhead_percent": (1 - ratios.median) * 100, "overhead_percent_ci": [ci_low, ci_high],
            "overhead_percent_ci_level": ratios.ci_level, "verdict": verdict(ci_low, ci_high)}


def table(rows: list[dict]) -> str:
    lines = ["| framework | harness samples/s | hand loop samples/s | overhead % | 95 % interval | "
             f"vs {LIMIT_PERCENT:g} % |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['framework']} | | | | | error: {row['error']} |")
            continue
        low, high = row["overhead_percent_ci"]
        lines.append(f"| {row['framework']} | {row['harness_samples_per_s']:,.0f} | {row['hand_samples_per_s']:,.0f} "
                     f"| {row['overhead_percent']:+.1f} | {low:+.1f} … {high:+.1f} | {row['verdict']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except UserError as error:
        print(f"overhead: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    started = datetime.now(timezone.utc)
    out = Path(args.out or SOURCE_ROOT / "results" / f"overhead-{started:%Y%m%dT%H%M%SZ}.json")
    rows, clock = [], time.perf_counter()
    for name in args.frameworks:
        python = envs.managed_python(FRAMEWORKS[name])
        if python is None:
            print(f"{name}: environment not set up (`scripts/bench setup {name}`): skipped", file=sys.stderr)
            continue
        print(f"{name}: {args.rounds} rounds of {args.steps} steps per side...", file=sys.stderr, flush=True)
        figures = run_child(name, str(python), args.rounds, args.steps)
        rows.append({"framework": name, **figures, **({} if "error" in figures else summarize(figures))})
    wall_s = time.perf_counter() - clock
    print(table(rows))
    print(f"\n{len(rows)} framework(s) in {wall_s:.0f} s; overhead = 1 - harness/hand, median of per-round ratios; "
          f"figures in {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started_at": started.isoformat(timespec="seconds"), "wall_s": wall_s,
                               "rounds": args.rounds, "steps": args.steps, "limit_percent": LIMIT_PERCENT,
                               "frameworks": rows}, indent=1))
    return EXIT_OVER_LIMIT if any("error" in row or row["verdict"] == "OVER" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
