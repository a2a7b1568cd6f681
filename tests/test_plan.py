"""The plan from the registry's data: cells a framework declares it cannot run are recorded unsupported without a
process; GPU cells get the shared policy and their own framework's variables. No framework is imported or run."""
from __future__ import annotations

import io
from dataclasses import replace

import pytest
from rich.console import Console

from bench import machine, runner, session
from bench.envs import Interpreter
from bench.registry import FRAMEWORKS, SHARED_GPU_ENVIRONMENT, SHARED_LIMITS, Limit
from bench.results import RunStore
from bench.runner import ChildOutcome, child_environment, plan
from bench.sampler import Energy, MemoryPeaks
from bench.settings import MODES, PRECISIONS, RunSettings
from frameworks.errors import UserError

MANAGED = Interpreter("/managed/bin/python", "managed")
USER = Interpreter("/opt/cuda-env/bin/python", "user")
TENSORFLOW_VARIABLES = {"TF_FORCE_GPU_ALLOW_GROWTH", "TF_CUDNN_USE_AUTOTUNE"}
PADDLE_VARIABLES = {"FLAGS_allocator_strategy", "FLAGS_cudnn_exhaustive_search"}
EVERY_GPU_VARIABLE = {name for fw in FRAMEWORKS.values() for name in fw.gpu_policy()}


def _settings(**overrides) -> RunSettings:
    return RunSettings(**{"frameworks": ("pytorch", "tensorflow"), "tasks": ("mnist_mlp",), "device": "cuda",
                          "profile": "smoke", "datasets": {"mnist_mlp": "synthetic"}, **overrides})


def test_every_limit_names_known_values():
    for limit in SHARED_LIMITS + tuple(limit for framework in FRAMEWORKS.values() for limit in framework.limits):
        assert limit.device in (None, "cpu", "cuda") and limit.mode in (None, *MODES)
        assert limit.origin in (None, "managed", "user") and limit.precision in (None, *PRECISIONS) and limit.why


@pytest.fixture
def declared_limit(monkeypatch) -> str:
    """PyTorch's entry as if it declared it cannot run CUDA cells from its managed environment."""
    why = "an example limit: no CUDA cells from the managed environment"
    limited = replace(FRAMEWORKS["pytorch"], limits=(Limit(why, device="cuda", origin="managed"),))
    monkeypatch.setitem(FRAMEWORKS, "pytorch", limited)
    return why


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_every_framework_runs_every_mode_on_both_devices_today(name):
    """The managed environments include CUDA builds now (frameworks/requirements/cuda/): nothing is declared
    unsupported; what only the running framework finds out stays a run-time Unsupported."""
    for device in ("cpu", "cuda"):
        for mode in MODES:
            for origin in ("managed", "user"):
                assert FRAMEWORKS[name].limit_for(device, mode, origin) is None


def test_tf32_is_planned_on_gpus_only_and_lifts_the_tf32_ban():
    """TF32 is a GPU math mode: a CPU cell asking for it is recorded unsupported, with why, for every framework;
    on a GPU it runs, without the NVIDIA_TF32_OVERRIDE=0 every other precision gets."""
    settings = _settings(device="cpu", precisions=("fp32", "tf32", "bf16"))
    cells = plan(settings, {"pytorch": MANAGED, "tensorflow": MANAGED}, "cpu", {"mnist_mlp": "synthetic"})
    assert [(c.framework, c.precision, c.unsupported_reason is None) for c in cells] == [
        ("pytorch", "fp32", True), ("pytorch", "tf32", False), ("pytorch", "bf16", True),
        ("tensorflow", "fp32", True), ("tensorflow", "tf32", False), ("tensorflow", "bf16", True)]
    assert "tensor cores" in cells[1].unsupported_reason
    on_gpu = plan(replace(settings, device="cuda"), {"pytorch": MANAGED}, "cuda", {"mnist_mlp": "synthetic"})
    assert all(cell.unsupported_reason is None for cell in on_gpu)
    assert "NVIDIA_TF32_OVERRIDE" not in child_environment("pytorch", "cuda", precision="tf32")
    assert child_environment("pytorch", "cuda", precision="bf16")["NVIDIA_TF32_OVERRIDE"] == "0"


def test_batch_sweep_plans_one_cell_per_batch_and_marks_those_outside_the_spec():
    cells = plan(_settings(batch_sizes=(32, 128, 512), train_samples=2048), {"pytorch": MANAGED}, "cuda",
                 {"mnist_mlp": "synthetic"})
    assert [(cell.batch_size, cell.outside_spec) for cell in cells] == [(32, True), (128, False), (512, True)]
    assert len({cell.cell_id for cell in cells}) == 3
    with pytest.raises(UserError, match="fewer than 2 batches of 512"):
        _settings(batch_sizes=(32, 512), train_samples=1000)


def test_plan_marks_limited_cells_and_runs_the_others(declared_limit):
    cells = plan(_settings(modes=("native", "compiled")), {"pytorch": MANAGED, "tensorflow": USER}, "cuda",
                 {"mnist_mlp": "synthetic"})
    assert [(cell.framework, cell.mode) for cell in cells] == [
        ("pytorch", "native"), ("pytorch", "compiled"), ("tensorflow", "native"), ("tensorflow", "compiled")]
    assert all(cell.unsupported_reason == declared_limit for cell in cells if cell.framework == "pytorch")
    assert all(cell.unsupported_reason is None for cell in cells if cell.framework == "tensorflow")
    on_cpu = plan(_settings(device="cpu"), {"pytorch": MANAGED}, "cpu", {"mnist_mlp": "synthetic"})
    assert [cell.unsupported_reason for cell in on_cpu] == [None]
    given = plan(_settings(), {"pytorch": USER}, "cuda", {"mnist_mlp": "synthetic"})
    assert [cell.unsupported_reason for cell in given] == [None]  # the limit is the managed environment's


def test_session_records_unsupported_cell_without_a_process(tmp_path, monkeypatch, declared_limit):
    """A run on a (faked) GPU: the managed pytorch cell is written unsupported and never reaches run_child; the
    tensorflow cell given with --python does, with TensorFlow's GPU variables."""
    started = []

    def fake_run_child(config, python, log_path, timeout_s, on_event, compile_cache="cold"):
        started.append((config.framework, python))
        log_path.write_text("")
        return ChildOutcome({"status": "failed", "reason": "fake child"}, 1, None, 0.5, "t0", "t1", "",
                            MemoryPeaks(None, None, None, None, "fake"), None,
                            Energy(None, None, "fake"), 1)

    monkeypatch.setattr(runner, "run_child", fake_run_child)
    monkeypatch.setattr(machine, "gpus", lambda: [{"name": "fake GPU"}])
    monkeypatch.setattr(session, "available_frameworks",
                        lambda settings, overrides, note, device, executor: {"pytorch": MANAGED, "tensorflow": USER})
    monkeypatch.setattr(session, "framework_versions", lambda interpreters, timeout_s, device: {})
    monkeypatch.setattr(session, "check_machine", lambda note: None)
    console = Console(file=io.StringIO(), width=200)
    store, records = session.run(_settings(), {"tensorflow": USER.python}, tmp_path, None, console)

    assert started == [("tensorflow", USER.python)]
    by_framework = {record["framework"]: record for record in records}
    record = by_framework["pytorch"]
    assert record["status"] == "unsupported"
    assert record["reason"] == declared_limit
    assert (record["exit_code"], record["signal"], record["wall_time_s"], record["log_tail"]) == (None, None, 0, "")
    assert record["interpreter"] == {"python": MANAGED.python, "origin": "managed"}
    assert record["gpu_policy"] is None and record["threads"] is None and record["contention"] is None
    assert record["compile_cache"] == "cold" and record["synthetic_data"] is True
    assert f"not run: {declared_limit}" in (store.folder / record["log_path"]).read_text()
    assert by_framework["tensorflow"]["gpu_policy"] == FRAMEWORKS["tensorflow"].gpu_policy()
    assert "unsupported" in console.file.getvalue()
    assert "cells to run, 1 unsupported here (recorded without a process)" in console.file.getvalue()
    RunStore(tmp_path, store.run_id).cells()  # every record reads back and validates against the schema


def test_gpu_policy_is_per_framework():
    tensorflow = child_environment("tensorflow", "cuda")
    assert TENSORFLOW_VARIABLES <= tensorflow.keys() and not PADDLE_VARIABLES & tensorflow.keys()
    assert tensorflow["NVIDIA_TF32_OVERRIDE"] == "0"
    assert PADDLE_VARIABLES <= child_environment("paddle", "cuda").keys()
    keras_jax = child_environment("keras[jax]", "cuda")
    assert keras_jax["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and not TENSORFLOW_VARIABLES & keras_jax.keys()
    assert TENSORFLOW_VARIABLES <= child_environment("keras[tensorflow]", "cuda").keys()
    assert FRAMEWORKS["keras[torch]"].gpu_policy() == FRAMEWORKS["pytorch"].gpu_policy() == dict(SHARED_GPU_ENVIRONMENT)


def test_cpu_cells_get_no_gpu_variables(monkeypatch):
    for name in EVERY_GPU_VARIABLE:
        monkeypatch.delenv(name, raising=False)
    assert not EVERY_GPU_VARIABLE & child_environment("pytorch", "cpu").keys()
    assert runner.gpu_policy("tensorflow", "cpu") is None
