"""The metric catalogue: every figure of a cell record's `metrics`, defined once.

A metric's facts live here and nowhere else: its unit, which direction is better, how it is printed, its column
heading, its run-to-run noise, the field that says why it is null, the field holding the cell's own samples of it,
and what it means. The JSON Schema's metric properties (`python -m bench.catalogue` writes them), the terminal
summary, the report's leaderboards, charts and ranking, `bench compare` and the CSV are all read from this table.
Adding a metric is its line here plus the code that measures it (the child, or `bench.metrics` for a figure the
parent derives).

Modelled on mlcommons/logging's single constants module: code names a metric through its constant here (e.g.
`TRAIN_SPEED.name`), never by a string of its own.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_PATH = Path(__file__).parent / "schemas" / "cell.schema.json"
MIB = 2**20

#: Run-to-run noise of single values: the largest coefficient of variation over 4 repeats of every framework on
#: both tasks (benchmarks/noise.py; 2 shared CPU cores with other jobs running: 4.8 % and 41.9 %), rounded up.
#: With two or more repeats a comparison uses the repeats' own variation instead. The 40 % was measured on the
#: time to the first step; its two parts, launch (interpreter start and import) and the first step, get it until
#: benchmarks/noise.py measures them apart.
PEAK_MEMORY_NOISE = 0.05
STARTUP_NOISE = 0.40
#: Not yet measured on a machine with energy counters (this one has none): assumed as twice peak memory's until
#: benchmarks/noise.py measures it there; with repeats, comparisons use their own variation.
ENERGY_NOISE = 0.10


@dataclass(frozen=True)
class Metric:
    name: str  # the field in a record's `metrics`
    help: str  # what it means: the schema's description and the report's tooltip
    type: str = "number"  # its JSON type besides null: number, integer, string, array or object
    unit: str = ""  # of the printed value ("samples/s", "ms", "MiB", "s"); "" for a plain number
    heading: str = ""  # column heading where it is shown in a table
    higher_is_better: bool | None = None  # None: not compared
    format: str = ",.3g"  # format of the printed value (after dividing by `scale`)
    scale: float = 1.0  # bytes are printed in MiB
    noise: float | None = None  # run-to-run relative standard deviation of one value (no repeats, no samples)
    reason: str | None = None  # the field saying why this one is null
    samples: str | None = None  # the field holding the cell's own samples of it: a comparison's evidence
    summary: str | None = None  # how the parent derives it from `samples`: "median" (with its interval) or "pNN"
    proportion: bool = False  # a share of the test samples: its noise is binomial
    criterion: str = ""  # the criterion's title where it ranks frameworks ("fastest to train")
    required: bool = True  # present (perhaps null) in every successful record of the current schema
    schema: dict = field(default_factory=dict)  # further JSON Schema constraints

    @property
    def interval_fields(self) -> tuple[str, str, str, str]:
        """The companions of a metric summarised as a median: interval bounds, its coverage, the samples' CV."""
        return tuple(f"{self.name}_{suffix}" for suffix in ("ci_low", "ci_high", "ci_level", "cv"))

    def text(self, value: float | None, missing: str = "—") -> str:
        """VALUE as printed in tables (scaled, formatted); MISSING for null."""
        return missing if value is None else format(value / self.scale, self.format)

    def with_unit(self, value: float | None) -> str:
        return f"{self.text(value)} {self.unit}".strip()

    def schema_property(self) -> dict:
        types = {"array": ["array", "null"], "object": ["object", "null"]}.get(self.type, [self.type, "null"])
        found = {"type": types, "description": self.help, **self.schema}
        if self.type == "array":
            found["items"] = {"type": "number"}
        return found


# The figures people compare: each a criterion of the leaderboards, the headline and `bench compare`.
TRAIN_SPEED = Metric("train_samples_per_s", "steady-state training samples per second, warm-up excluded: the median of the "
                     "timing windows (its interval under it)",
                     unit="samples/s", heading="train samples/s", higher_is_better=True, format=",.0f",
                     samples="train_samples_per_s_windows", summary="median", criterion="fastest to train",
                     schema={"exclusiveMinimum": 0})
LATENCY = Metric("latency_batch1_ms_p50", "single-sample prediction latency, median, milliseconds "
                 "(p99 in the tooltip)", unit="ms",
                 heading="latency ms", higher_is_better=False, samples="latency_batch1_ms_samples", summary="p50",
                 criterion="fastest to infer (batch 1)")
ACCURACY = Metric("test_accuracy", "test accuracy after the last epoch, on the whole test set or the "
                  "profile's subset; null on synthetic data",
                  heading="accuracy", higher_is_better=True, format=".4f", proportion=True,
                  criterion="most accurate", schema={"minimum": 0, "maximum": 1})
HOST_MEMORY = Metric("peak_host_tree_bytes", "peak memory of the cell's processes, sampled: summed PSS (shared "
                     "pages counted once) where the OS gives it, else RSS (peak_host_tree_kind); bytes, MiB in tables", type="integer", unit="MiB", heading="host MiB",
                     higher_is_better=False, format=",.0f", scale=MIB, noise=PEAK_MEMORY_NOISE,
                     criterion="leanest in host memory")
GPU_MEMORY = Metric("peak_gpu_nvml_bytes", "peak GPU memory of the cell's processes (NVML), above the idle "
                    "context; bytes, MiB in tables", type="integer", unit="MiB", heading="GPU MiB",
                    higher_is_better=False, format=",.0f", scale=MIB, noise=PEAK_MEMORY_NOISE,
                    reason="peak_gpu_nvml_reason", criterion="leanest in GPU memory")
LAUNCH = Metric("launch_s", "interpreter start + importing the framework (startup_s + import_s), seconds", unit="s",
                heading="import s", higher_is_better=False, format=",.2f", noise=STARTUP_NOISE,
                criterion="quickest to import")
FIRST_STEP = Metric("first_step_s", "seconds of the first training step alone (tracing, compilation, autotuning)",
                    unit="s", heading="first step s", higher_is_better=False, noise=STARTUP_NOISE,
                    criterion="quickest first step (compile)")

TRAIN_ENERGY = Metric("train_energy_j_per_sample", "energy the device drew per training sample over the training "
                      "phase (warm-up and compilation in, evaluation out), joules: the whole device's counter "
                      "(energy_source); null where it has none", unit="J", heading="train J/sample",
                      higher_is_better=False, noise=ENERGY_NOISE, reason="energy_reason",
                      criterion="least energy to train", required=False)

# Shown beside them, not ranked.
TIME_TO_ACCURACY = Metric("time_to_accuracy_s", "time to accuracy: training wall-clock (evaluation excluded) "
                          "until the end of the first epoch reaching the spec's target; null: see the reason", unit="s", heading="to target s", format=",.1f",
                          reason="time_to_accuracy_reason")
INFERENCE_SPEED = Metric("inference_samples_per_s", "test-set samples per second in a warm pass at batch 1000",
                         unit="samples/s", heading="infer samples/s", format=",.0f")
LATENCY_P99 = Metric("latency_batch1_ms_p99", "99th percentile, milliseconds", unit="ms",
                     samples="latency_batch1_ms_samples", summary="p99")
INFERENCE_ENERGY = Metric("inference_energy_j_per_1000", "energy the device drew per 1,000 single-sample "
                          "predictions (the latency phase), joules", unit="J", heading="J/1,000 inferences",
                          reason="energy_reason", required=False)
PROCESS_MEMORY = Metric("peak_host_rss_bytes", "peak resident set size of the cell's process (kernel high-water "
                        "mark), bytes", type="integer", unit="MiB", format=",.0f", scale=MIB)

#: Every metric of a record, in the schema's order. Fields derived with a metric (its interval) follow from it.
CATALOGUE: tuple[Metric, ...] = (
    Metric("startup_s", "seconds from the harness starting the process to the cell's first line", unit="s"),
    Metric("import_s", "seconds importing the framework and its adapter", unit="s"),
    Metric("data_s", "seconds reading and scaling the dataset, before any training clock", unit="s"),
    Metric("build_s", "seconds building the model and loading the initial weights", unit="s"),
    FIRST_STEP,
    Metric("time_to_first_step_s", "startup_s + import_s + build_s + first_step_s", unit="s"),
    Metric("warmup_steps", "training steps kept out of steady state", type="integer"),
    Metric("warmup_s", "seconds of those steps", unit="s"),
    Metric("train_s", "seconds of all training (warm-up included, evaluation excluded)", unit="s"),
    Metric("steady_train_s", "seconds of the steady-state steps", unit="s"),
    TRAIN_SPEED,
    Metric(TRAIN_SPEED.samples, "samples/s of each window of steady-state steps between two synchronisations",
           type="array"),
    Metric("eval_s", "seconds of the per-epoch evaluations", unit="s"),
    INFERENCE_SPEED,
    Metric("inference_samples_per_s_by_batch", "samples per second by batch size (keys), after one warm batch "
           "each; null in records from 2026-11-28 on: no report or comparison showed it", type="object", required=False,
           schema={"additionalProperties": {"type": "number"}}),
    Metric("inference_s", "seconds of the inference measurements (latency)", unit="s"),
    Metric(LATENCY.samples, "milliseconds of each timed single-sample prediction", type="array"),
    LATENCY,
    Metric("latency_batch1_ms_p90", "90th percentile, milliseconds", unit="ms", samples=LATENCY.samples,
           summary="p90"),
    LATENCY_P99,
    ACCURACY,
    Metric("test_loss", "mean test cross-entropy after the last epoch"),
    Metric("final_train_loss", "mean training loss of the last epoch"),
    Metric("accuracy_target", "the task's target accuracy for this dataset (spec)"),
    TIME_TO_ACCURACY,
    Metric("time_to_accuracy_epoch", "that epoch", type="integer"),
    Metric(TIME_TO_ACCURACY.reason, "why time_to_accuracy_s is null", type="string"),
    PROCESS_MEMORY,
    Metric("peak_gpu_allocated_bytes", "peak of the framework's own GPU allocator, bytes", type="integer",
           unit="MiB", format=",.0f", scale=MIB, reason="peak_gpu_reason"),
    Metric("peak_gpu_reason", "why peak_gpu_allocated_bytes is null", type="string"),
    GPU_MEMORY,
    Metric("gpu_nvml_baseline_bytes", "GPU memory of the idle context per NVML, bytes", type="integer"),
    Metric(GPU_MEMORY.reason, "why peak_gpu_nvml_bytes is null", type="string"),
    Metric("train_flops_per_sample", "floating-point operations per training sample, from the spec (3x forward)"),
    Metric("achieved_train_flops_per_s", "train_flops_per_sample x train_samples_per_s"),
    Metric("device_peak_flops_per_s", "the device's peak at the cell's precision (float32 without tensor cores for "
           "fp32; the tensor cores' for tf32, bf16, fp16), one figure for every framework (device_peak_source), "
           "FLOP/s"),
    Metric("utilisation_percent", "achieved_train_flops_per_s / device_peak_flops_per_s x 100 (at most 100: the "
           "peak is an upper bound)", unit="%"),
    HOST_MEMORY,
    Metric("peak_host_tree_kind", "what peak_host_tree_bytes sums: pss (proportional set size) or rss (version-2 "
           "records, or no /proc/PID/smaps_rollup)", type="string", schema={"enum": ["pss", "rss", None]}),
    LAUNCH,
    Metric("matmul_flops_per_s", "fastest float32 square matrix product in this framework on this device (2048 on "
           "CPU, 8192 on GPU), FLOP/s; shown, not the peak utilisation is measured against"),
    Metric("device_peak_source", "how device_peak_flops_per_s was obtained: theoretical from cores x clock x "
           "vector width, or a GPU data sheet", type="string"),
    TRAIN_ENERGY,
    INFERENCE_ENERGY,
    Metric("energy_source", "the counter energy was read from: NVML's total energy of the GPU, or RAPL's CPU "
           "package domains", type="string", required=False),
    Metric(TRAIN_ENERGY.reason, "why the energy figures are null", type="string", required=False),
)
BY_NAME: dict[str, Metric] = {metric.name: metric for metric in CATALOGUE}

#: What frameworks are ranked on (every metric with a `criterion`), in the headline's order.
CRITERIA = (TRAIN_SPEED, LATENCY, ACCURACY, HOST_MEMORY, GPU_MEMORY, LAUNCH, FIRST_STEP, TRAIN_ENERGY)

#: The report's leaderboard columns after framework and status, in order.
LEADERBOARD = (ACCURACY, TRAIN_SPEED, LATENCY, HOST_MEMORY, GPU_MEMORY, LAUNCH, FIRST_STEP, TIME_TO_ACCURACY,
               TRAIN_ENERGY, INFERENCE_ENERGY)
#: Leaderboard columns shown only where some framework of the setting measured them (a device without counters).
WHERE_MEASURED = (TRAIN_ENERGY, INFERENCE_ENERGY)
#: Compared only between cells trained with the spec's hyperparameters: a swept batch size (outside the spec)
#: reaches another accuracy for reasons that are not the framework's, so it is recorded but not compared.
SPEC_ONLY = (ACCURACY, TIME_TO_ACCURACY)
#: The terminal's summary columns, in order.
TERMINAL = (ACCURACY, TRAIN_SPEED, FIRST_STEP, INFERENCE_SPEED, LATENCY, HOST_MEMORY)
#: The CSV's metric columns (raw numbers): the leaderboard's, the p99 and the time to the first step.
SPREADSHEET = (ACCURACY, TRAIN_SPEED, LATENCY, LATENCY_P99, HOST_MEMORY, GPU_MEMORY, LAUNCH, FIRST_STEP,
               BY_NAME["time_to_first_step_s"], TIME_TO_ACCURACY, TRAIN_ENERGY, INFERENCE_ENERGY)


def record_fields() -> list[str]:
    """Every field of a record's `metrics`, companions included, in order."""
    names = []
    for metric in CATALOGUE:
        names.append(metric.name)
        if metric.summary == "median":
            names += metric.interval_fields
    return names


def schema_properties() -> dict[str, dict]:
    """The JSON Schema of a record's `metrics` properties."""
    properties = {}
    for metric in CATALOGUE:
        properties[metric.name] = metric.schema_property()
        if metric.summary == "median":
            low, high, level, cv = metric.interval_fields
            properties.update({
                low: {"type": ["number", "null"], "description": "lower bound of the distribution-free "
                      f"confidence interval of {metric.name}'s median"},
                high: {"type": ["number", "null"], "description": "upper bound"},
                level: {"type": ["number", "null"], "description": "the interval's exact coverage (>= 0.95 from 6 "
                        "samples on)", "minimum": 0, "maximum": 1},
                cv: {"type": ["number", "null"], "description": "coefficient of variation of the samples "
                     "(standard deviation / mean)"}})
    return properties


def required_when_ok() -> list[str]:
    optional = {metric.name for metric in CATALOGUE if not metric.required}
    return sorted(name for name in record_fields() if name not in optional)


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Rewrite the schema file's metric properties and required list from the catalogue."""
    schema = json.loads(path.read_text())
    schema["properties"]["metrics"]["properties"] = schema_properties()
    for rule in schema["allOf"]:
        metrics = rule["then"].get("properties", {}).get("metrics", {})
        if "required" in metrics:
            metrics["required"] = required_when_ok()
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_schema(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH)
    print(f"wrote the metric properties of {SCHEMA_PATH.name} from the catalogue")
