"""Run settings: one dataclass that validates itself and names the allowed values in its errors."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bench.datasets import DATASET_NAMES, require_folder
from bench.registry import resolve_framework
from frameworks.errors import UserError
from frameworks.spec import PROFILES, TASKS

DEVICES = ("cpu", "cuda", "auto")
#: native: each framework the way its own documentation trains for speed; eager: op by op (debugging);
#: compiled: its graph compiler (XLA, inductor, to_static, static hybridize). Adapters say what each ran.
MODES = ("native", "eager", "compiled")
COMPILE_CACHES = ("cold", "warm")
AUTO_REPEATS_MIN, AUTO_REPEATS_MAX = 3, 10
#: --repeats auto stops once every cell's 95 % interval for training speed is within this fraction of its median
AUTO_REPEATS_PRECISION = 0.05


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


@dataclass
class RunSettings:
    frameworks: tuple[str, ...] = ()  # empty: every framework whose environment is available
    tasks: tuple[str, ...] = tuple(TASKS)
    device: str = "cpu"
    modes: tuple[str, ...] = ("native",)
    profile: str = "quick"
    datasets: dict[str, str] = field(default_factory=dict)  # task -> dataset chosen by the user
    epochs: int | None = None
    batch_size: int | None = None
    train_samples: int | None = None
    repeats: int = 1  # with auto_repeats: the cap
    auto_repeats: bool = False  # repeat until every cell's interval is narrow (AUTO_REPEATS_PRECISION) or the cap
    seed: int = 0
    data_dir: str | None = None
    timeout_s: float = 1800.0
    download: bool = True
    compile_cache: str = "cold"

    def __post_init__(self):
        self.frameworks = tuple(dict.fromkeys(resolve_framework(name).name for name in self.frameworks))
        self.tasks = _choose("task", list(self.tasks), TASKS)
        self.device = _choose("device", [self.device], DEVICES)[0]
        self.modes = _choose("mode", list(self.modes), MODES)
        self.profile = _choose("profile", [self.profile], PROFILES)[0]
        self.compile_cache = _choose("compile cache", [self.compile_cache], COMPILE_CACHES)[0]
        if not self.tasks or not self.modes:
            raise UserError("at least one task and one mode are needed")
        for name in ("epochs", "batch_size", "train_samples", "repeats"):
            _positive(f"--{name.replace('_', '-')}", getattr(self, name))
        _positive("--seed", self.seed, allow_zero=True)
        if self.data_dir is not None:
            require_folder("--data-dir", self.data_dir)
        if not self.timeout_s > 0:
            raise UserError(f"--timeout must be a positive number of seconds. Received: {self.timeout_s}")
        for task in self.tasks:
            if self.batch_size_for(task) * 2 > self.train_samples_for(task):
                raise UserError(f"{task}: {self.train_samples_for(task)} training samples make fewer than 2 "
                                f"batches of {self.batch_size_for(task)}; raise --train-samples or lower "
                                f"--batch-size")

    def epochs_for(self, task: str) -> int:
        return self.epochs or PROFILES[self.profile].epochs[task]

    def batch_size_for(self, task: str) -> int:
        return self.batch_size or TASKS[task].batch_size

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
        return cls(**values)
