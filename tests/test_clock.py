"""The throughput clock and the training loop, driven by a fake adapter and a fake timer: no framework, milliseconds.

The fake timer stands still until the fake adapter's `train_step` (or `predict`) advances it by a known amount, so
every figure the clock reports is known in advance. One log records, in order, the adapter's `synchronize()` calls,
the timer's reads and the losses' reads, so the tests can check what happens between two time reads.
"""
from __future__ import annotations

import ast
import sys

import numpy as np
import pytest

from bench.registry import FRAMEWORKS
from conftest import REPO
from frameworks import child, loop
from frameworks.clock import WINDOW_STEPS, StepClock, Stopwatch, TrainTiming, warmup_steps
from frameworks.contract import Adapter

BATCH = 32


class FakeTimer:
    def __init__(self, log: list):
        self.now, self.log = 0.0, log

    def __call__(self) -> float:
        self.log.append(("time", self.now))
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeLoss:
    """A loss not read yet: its float() is logged."""

    def __init__(self, value: float, log: list):
        self.value, self.log = value, log

    def __float__(self) -> float:
        self.log.append(("loss", self.value))
        return self.value


class FakeAdapter(Adapter):
    """Step n costs step_s(n) seconds of the fake timer and returns the loss n; each predicted batch costs 1 ms.
    Records the first column of every training batch (the sample's index when the images are arange(N))."""

    def __init__(self, step_s=lambda step: 0.001):
        self.log: list = []
        self.timer = FakeTimer(self.log)
        self.step_s, self.steps, self.batches = step_s, 0, []

    @staticmethod
    def framework_version() -> str:
        return "0"

    def build(self, weights):
        pass

    def train_step(self, images, labels):
        self.steps += 1
        self.batches.append(images[:, 0].astype(int))
        self.timer.advance(self.step_s(self.steps))
        return FakeLoss(float(self.steps), self.log)

    def predict(self, images):
        self.timer.advance(0.001)
        return np.zeros((len(images), 10), np.float32)

    def weights(self):
        return {}

    def parameter_count(self) -> int:
        return 0

    def synchronize(self) -> None:
        self.log.append(("sync",))

    def matmul_step(self, size):
        return lambda: None

    def execution(self):
        return {}


def one_epoch(adapter: FakeAdapter, steps: int, result: TrainTiming) -> StepClock:
    """Run `steps` steps through the contract's own train_epoch, then close the last window as run_training does."""
    clock = StepClock(adapter, result, BATCH, steps_before=0, timer=adapter.timer)
    adapter.train_epoch(np.zeros((steps * BATCH, 1), np.float32), np.zeros(steps * BATCH, np.int64), BATCH, clock)
    clock.finish()
    return clock


def costs_ms(step: int) -> float:
    """The first step 100 ms, the rest of the warm-up 10 ms, then three windows of 4, 5 and 8 ms a step."""
    ms = 100 if step == 1 else 10 if step <= 10 else 4 if step <= 20 else 5 if step <= 30 else 8
    return ms / 1000


def test_windows_first_step_warmup_and_steady_figures():
    adapter, result = FakeAdapter(costs_ms), TrainTiming(warmup_steps=warmup_steps(40))
    clock = one_epoch(adapter, 40, result)
    assert result.warmup_steps == 10 and WINDOW_STEPS == 10
    assert result.first_step_s == pytest.approx(0.100)
    assert result.warmup_s == pytest.approx(0.100 + 9 * 0.010)
    assert result.window_samples_per_s == pytest.approx([10 * BATCH / 0.040, 10 * BATCH / 0.050, 10 * BATCH / 0.080])
    assert result.samples_per_s == pytest.approx(10 * BATCH / 0.050)  # the median window
    assert result.steady_samples == 30 * BATCH and result.steady_s == pytest.approx(0.170)
    assert clock.train_s == pytest.approx(0.360)
    assert clock.losses == [float(step) for step in range(1, 41)]


def test_synchronize_comes_right_before_every_time_read_that_closes_a_window():
    adapter = FakeAdapter(costs_ms)
    one_epoch(adapter, 40, TrainTiming(warmup_steps=10))
    reads = [index for index, event in enumerate(adapter.log) if event[0] == "time"]
    assert len(reads) == 2 * 5  # windows: the first step, the rest of the warm-up, three steady ones
    closing = reads[1::2]
    assert all(adapter.log[index - 1] == ("sync",) for index in closing)
    assert adapter.log[0] == ("sync",)  # the clock synchronises before its first window opens, too


def test_losses_are_read_only_when_a_window_closes():
    adapter = FakeAdapter(costs_ms)
    one_epoch(adapter, 40, TrainTiming(warmup_steps=10))
    read_after_close, timing, window = [], False, -1
    for event in adapter.log:
        if event[0] == "time":
            timing = not timing
            if not timing:
                window += 1
                read_after_close.append([])
        elif event[0] == "loss":
            assert not timing, "a loss was read inside a timed window"
            read_after_close[window].append(int(event[1]))
    assert read_after_close == [[1], list(range(2, 11)), list(range(11, 21)), list(range(21, 31)),
                                list(range(31, 41))]


@pytest.mark.parametrize("steps", range(2, 25))
def test_a_short_epoch_keeps_at_least_half_its_steps_for_steady_state(steps):
    adapter = FakeAdapter()
    train = (np.arange(steps * BATCH, dtype=np.float32)[:, None], np.zeros(steps * BATCH, np.int64))
    test = (np.zeros((10, 1), np.float32), np.zeros(10, np.int64))
    result = loop.run_training(adapter, train, test, epochs=1, batch_size=BATCH, seed=0, measure_accuracy=False,
                               emit=lambda *args, **fields: None, timer=adapter.timer)
    assert result.warmup_steps == warmup_steps(steps) >= 1
    assert result.steady_samples >= steps * BATCH / 2
    assert result.steady_samples == (steps - result.warmup_steps) * BATCH
    assert result.steady_s == pytest.approx(result.steady_samples / BATCH * 0.001)


def test_run_training_needs_two_steps():
    train = (np.zeros((BATCH + 5, 1), np.float32), np.zeros(BATCH + 5, np.int64))
    with pytest.raises(ValueError, match="at least 2"):
        loop.run_training(FakeAdapter(), train, train, epochs=1, batch_size=BATCH, seed=0, measure_accuracy=False,
                          emit=lambda *args, **fields: None)


def test_run_training_follows_epoch_order_and_fills_the_record():
    samples, seed, steps = 7 * BATCH + 5, 11, 7  # the last partial batch is dropped
    adapter, events = FakeAdapter(), []
    train = (np.arange(samples, dtype=np.float32)[:, None], np.arange(samples) % 10)
    test = (np.zeros((1500, 1), np.float32), np.zeros(1500, np.int64))  # two evaluation batches: 2 ms
    result = loop.run_training(adapter, train, test, epochs=2, batch_size=BATCH, seed=seed, measure_accuracy=True,
                               emit=lambda event, **fields: events.append((event, fields)), timer=adapter.timer)
    for epoch in range(2):
        seen = np.concatenate(adapter.batches[epoch * steps:(epoch + 1) * steps])
        assert np.array_equal(seen, loop.epoch_order(samples, seed, epoch)[:steps * BATCH])
    first, second = result.epochs
    assert first["train_loss"] == np.mean(range(1, 8)) and second["train_loss"] == np.mean(range(8, 15))
    assert first["train_time_s"] == pytest.approx(0.007) and second["cumulative_train_time_s"] == pytest.approx(0.014)
    assert result.eval_s == pytest.approx(0.004) and result.inference_samples_per_s == pytest.approx(1500 / 0.002)
    assert result.test_accuracy == 1.0 and result.warmup_steps == 3
    # epoch 1: windows of the first step, steps 2-3, then 4-7; epoch 2 is all steady: one window of 7 steps
    assert result.window_samples_per_s == pytest.approx([4 * BATCH / 0.004, 7 * BATCH / 0.007])
    assert [event for event, _ in events if event == "epoch"] == ["epoch", "epoch"]
    phases = [fields["name"] for event, fields in events if event == "phase"]
    assert phases == ["eval", "train", "eval", "train", "eval"]  # evaluations told apart; the last, a warm pass


def test_stopwatch_and_phase():
    log: list = []
    timer = FakeTimer(log)
    with Stopwatch(timer) as watch:
        timer.advance(0.25)
    assert watch.seconds == 0.25

    phases, announced = {}, []
    original, child._enter_phase = child._enter_phase, lambda name, settle_s=0.0: announced.append(name)
    try:
        with child.phase("data", phases):
            pass
        with child.phase("build", phases, announce=True):
            assert announced == ["build"]  # told before the block runs
        with pytest.raises(RuntimeError), child.phase("inference", phases, announce=True):
            raise RuntimeError
    finally:
        child._enter_phase = original
    assert list(phases) == ["data_s", "build_s"] and all(seconds >= 0 for seconds in phases.values())
    assert announced == ["build", "inference"]


def _imports(path) -> set[str]:
    """Top-level names of the modules a file imports (relative imports count as "frameworks")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("frameworks" if node.level else node.module.split(".")[0])
    return names


def test_frameworks_import_no_bench_and_only_numpy_and_the_standard_library_outside_adapters():
    adapters = {fw.adapter.split(":")[0].rsplit(".", 1)[1] for fw in FRAMEWORKS.values()}
    files = sorted((REPO / "frameworks").glob("*.py"))
    assert {"clock", "loop", "contract", "child"} <= {path.stem for path in files} and adapters
    for path in files:
        imported = _imports(path)
        assert "bench" not in imported, f"frameworks/{path.name} imports the harness"
        if path.stem not in adapters:
            foreign = imported - {"numpy", "frameworks"} - set(sys.stdlib_module_names)
            assert not foreign, f"frameworks/{path.name} imports {sorted(foreign)}: NumPy and the standard library only"
