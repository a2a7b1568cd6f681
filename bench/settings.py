"""Run settings: one dataclass that validates itself and names the allowed values in its errors."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bench.datasets import DATASET_NAMES, require_folder
from bench.registry import FRAMEWORKS, resolve_framework
from frameworks.errors import UserError
from frameworks.spec import PRECISIONS, PROFILES, TASKS

DEVICES = ("cpu", "cuda", "auto")
#: native: each framework the way its own documentation trains for speed; eager: op by op (debugging);
#: compiled: its graph compiler (XLA, inductor, to_static, static hybridize). Adapters say what each ran.
MODES = ("native", "eager", "compiled")
COMPILE_CACHES = ("cold", "warm")
AUTO_REPEATS_MIN, AUTO_REPEATS_MAX = 3, 10
#: --repeats auto stops once every cell's 95 % interval for training speed is within this fraction of its median
AUTO_REPEATS_PRECISION = 0.05
#: `bench parity --timeout` default: seconds per framework and task (a few steps, not a whole cell)
PARITY_TIMEOUT_S = 600.0


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _choose(kind: str, values: list[str], allowed) -> tuple[str, ...]:
    for value in values:
        if value not in allowed:
            raise UserError(f"unknown {kind} {value!r}; choose from: {', '.join(allowed)}. Received: {value!r}")
    return tuple(dict.fromkeys(values))


def parse_datasets(value: str | None, tasks: tuple[str, ...]) -> dict[str, str]:
    """`--dataset` as {task: dataset} for the tasks it names: NAME (every task that accepts it) or TASK=NAME."""
    chosen: dict[str, str] = {}
    for item in split_list(value):
        task_name, sep, name = item.rpartition("=")
        _choose("dataset", [name], DATASET_NAMES)
        targets = _choose("task", [task_name], TASKS) if sep else tasks
        fitting = [task for task in targets if name in TASKS[task].datasets]
        if not fitting:
            accepted = "; ".join(f"{task}: {', '.join(TASKS[task].datasets)}" for task in targets)
            raise UserError(f"dataset {name!r} fits none of the selected tasks ({accepted}). Received: {item!r}")
        chosen.update({task: name for task in fitting if task in tasks})
    return chosen


def _positive(name: str, value: int | None, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise UserError(f"{name} must be a positive whole number. Received: {value}")


def _option(flag: str, help: str, **argparse_extra) -> dict:
    """A field's command-line option: its flag and help (the CLI adds the default, read from the field)."""
    return {"flag": flag, "help": help, **argparse_extra}


@dataclass
class RunSettings:
    """What one `bench run` runs. Each field's default is the command line's, and its metadata holds its option:
    `flag`, `help` and any argparse extras (`choices`, `metavar`); bench.cli builds `bench run` from them."""
    frameworks: tuple[str, ...] = field(default=(), metadata=_option(  # empty: every framework set up
        "--frameworks", f"comma-separated; default: every one set up ({', '.join(FRAMEWORKS)})"))
    tasks: tuple[str, ...] = field(default=tuple(TASKS), metadata=_option("--tasks", "comma-separated"))
    device: str = field(default="cpu", metadata=_option(
        "--device", "where cells run; auto: cuda when an NVIDIA GPU is found, else cpu", choices=DEVICES))
    modes: tuple[str, ...] = field(default=("native",), metadata=_option(
        "--mode", f"comma-separated modes ({', '.join(MODES)}); native: each framework trained the way its own "
                  "docs recommend for speed; eager: op by op, for debugging; compiled: its graph compiler"))
    precisions: tuple[str, ...] = field(default=("fp32",), metadata=_option(
        "--precision", f"comma-separated ({', '.join(PRECISIONS)}); fp32: float32, TF32 off; tf32: TensorFloat-32 "
                       "matmuls (NVIDIA GPUs); bf16, fp16: each framework's mixed-precision recipe (fp16 with loss "
                       "scaling)"))
    profile: str = field(default="quick", metadata=_option(
        "--profile", "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()), choices=PROFILES))
    datasets: dict[str, str] = field(default_factory=dict, metadata=_option(  # task -> dataset chosen by the user
        "--dataset", f"NAME or TASK=NAME, comma-separated ({', '.join(DATASET_NAMES)}); default per task: "
                     + ", ".join(f"{t.name}={t.default_dataset}" for t in TASKS.values())))
    epochs: int | None = field(default=None, metadata=_option("--epochs", "default: the profile's, per task"))
    batch_sizes: tuple[int, ...] = field(default=(), metadata=_option(  # empty: the task's own
        "--batch-size", "training batch sizes, comma-separated: more than one runs a sweep; a batch other than the "
                        "task's is labelled outside the spec (its accuracy is not compared); default: the task's ("
                        + ", ".join(f"{t.name} {t.batch_size}" for t in TASKS.values()) + ")", metavar="N[,N...]"))
    train_samples: int | None = field(default=None, metadata=_option(
        "--train-samples", "a seeded sample of N training samples, every class in proportion; default: the "
                           "profile's, per task", metavar="N"))
    repeats: int = field(default=1, metadata=_option(  # with auto_repeats: the cap
        "--repeats", f"each cell again in a fresh process; auto: at least {AUTO_REPEATS_MIN}, then more until each "
                     f"cell's training-speed interval is within ±{AUTO_REPEATS_PRECISION:.0%} (at most "
                     f"{AUTO_REPEATS_MAX})", metavar="{N,auto}"))
    auto_repeats: bool = False  # repeat until every cell's interval is narrow (AUTO_REPEATS_PRECISION) or the cap
    seed: int = field(default=0, metadata=_option("--seed", "initial weights, batch order, dropout"))
    data_dir: str | None = field(default=None, metadata=_option(
        "--data-dir", "folder holding the datasets (also: $BENCH_DATA)", metavar="DIR"))
    timeout_s: float = field(default=1800.0, metadata=_option("--timeout", "seconds per cell", metavar="SECONDS"))
    download: bool = field(default=True, metadata=_option(
        "--no-download", "never download a dataset (also: $BENCH_NO_DOWNLOAD=1)"))
    compile_cache: str = field(default="cold", metadata=_option(
        "--compile-cache", "cold: every cell compiles from an empty cache; warm: keep torch.compile's, JAX's caches "
                           "per framework across cells and runs", choices=COMPILE_CACHES))

    def __post_init__(self):
        self.frameworks = tuple(dict.fromkeys(resolve_framework(name).name for name in self.frameworks))
        self.tasks = _choose("task", list(self.tasks), TASKS)
        self.device = _choose("device", [self.device], DEVICES)[0]
        self.modes = _choose("mode", list(self.modes), MODES)
        self.profile = _choose("profile", [self.profile], PROFILES)[0]
        self.compile_cache = _choose("compile cache", [self.compile_cache], COMPILE_CACHES)[0]
        self.precisions = _choose("precision", list(self.precisions), PRECISIONS)
        self.batch_sizes = tuple(dict.fromkeys(self.batch_sizes))
        if not self.tasks or not self.modes or not self.precisions:
            raise UserError("at least one task, one mode and one precision are needed")
        for name in ("epochs", "train_samples", "repeats"):
            _positive(flag(name), getattr(self, name))
        for batch_size in self.batch_sizes:
            _positive(flag("batch_sizes"), batch_size)
        _positive(flag("seed"), self.seed, allow_zero=True)
        if self.data_dir is not None:
            require_folder(flag("data_dir"), self.data_dir)
        if not self.timeout_s > 0:
            raise UserError(f"{flag('timeout_s')} must be a positive number of seconds. Received: {self.timeout_s}")
        for task in self.tasks:
            largest = max(self.batch_sizes_for(task))
            if largest * 2 > self.train_samples_for(task):
                raise UserError(f"{task}: {self.train_samples_for(task)} training samples make fewer than 2 "
                                f"batches of {largest}; raise {flag('train_samples')} or lower "
                                f"{flag('batch_sizes')}")

    def epochs_for(self, task: str) -> int:
        return self.epochs or PROFILES[self.profile].epochs[task]

    def batch_sizes_for(self, task: str) -> tuple[int, ...]:
        """The training batch sizes TASK runs at: the ones asked for, else the spec's."""
        return self.batch_sizes or (TASKS[task].batch_size,)

    def train_samples_for(self, task: str) -> int:
        """Requested training samples (the dataset may hold fewer; the cell records what it used)."""
        chosen = self.train_samples or PROFILES[self.profile].train_samples[task]
        return chosen or TASKS[task].full_sizes[0]

    def test_samples_for(self, task: str) -> int | None:
        return PROFILES[self.profile].test_samples[task]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunSettings":
        """Settings as a run's manifest stored them (runs before the batch sweep stored one `batch_size`)."""
        values = dict(values)
        if "batch_size" in values:
            single = values.pop("batch_size")
            values["batch_sizes"] = (single,) if single else ()
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items()})


def flag(name: str) -> str:
    """RunSettings field NAME's command-line flag, as errors name it: flag("timeout_s") == "--timeout"."""
    return RunSettings.__dataclass_fields__[name].metadata["flag"]
