"""A run stopped from outside (SIGTERM, SIGHUP, the harness SIGKILLed) leaves no cell running and no half-done
record."""
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from bench import envs
from bench.registry import FRAMEWORKS
from frameworks.protocol import CellConfig
from conftest import REPO, cells

PYTORCH = envs.interpreter_for(FRAMEWORKS["pytorch"], {})
needs_pytorch = pytest.mark.skipif(PYTORCH is None, reason="no pytorch environment: `bench setup pytorch`")
EPOCHS = 100_000  # far more than a test waits for: the cell is surely still training when it is stopped
SMOKE = ["--frameworks", "pytorch", "--tasks", "mnist_mlp", "--profile", "smoke", "--dataset", "synthetic"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_NO_DOWNLOAD": "1"}
#: Stands in for a framework's interpreter (--python): a cell that starts a worker (as compilers do), then waits.
FAKE_CELL = """
import subprocess, sys, time
if "frameworks.child" not in sys.argv:
    sys.exit("cells only")  # bench's version probe
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", *sys.argv[1:]])
time.sleep(600)
"""
#: Starts a command the way the runner starts a cell (its pid in BENCH_PARENT_PID, a session of its own), with
#: output to a file: a pipe would break when this parent dies and end the child for another reason.
PARENT = """
import os, subprocess, sys, time
with open(sys.argv[1], "w") as out:
    child = subprocess.Popen(sys.argv[2:], env={**os.environ, "BENCH_PARENT_PID": str(os.getpid())},
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""
#: A process that ties itself to its parent, says so, and waits: where prctl is not available when asked.
TIED = """
import sys, time
from frameworks import lifeline
if sys.argv[1] == "no-prctl":
    lifeline._kill_on_parent_exit = lambda: False
lifeline.tie_to_parent()
print("tied", flush=True)
time.sleep(float(sys.argv[2]))
"""


def cell_processes(tmp_path) -> list[psutil.Process]:
    """Live processes of a cell whose config lies under TMP_PATH (the cell, and workers given its arguments)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if ("frameworks.child" in cmdline and any(str(tmp_path) in part for part in cmdline)
                and process.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(process)
    return found


def wait_for(condition, timeout_s: float, what: str) -> float:
    """Seconds until CONDITION held; fails after TIMEOUT_S."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"no {what} within {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


class BenchRun:
    """`python -m bench run ARGS` in the background, its output collected as it comes. TMPDIR is the test's
    folder, so the cell's config file, and with it the cell's command line, names it."""

    def __init__(self, tmp_path, *args: str):
        self.lines: list[str] = []
        self.process = subprocess.Popen([sys.executable, "-m", "bench", "run", *args], cwd=tmp_path,
                                        env={**ENV, "TMPDIR": str(tmp_path)}, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self, number: int) -> str:
        self.process.send_signal(number)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return "".join(self.lines)


@pytest.fixture
def cleanup(tmp_path):
    """Whatever a failing test leaves running is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
    for process in cell_processes(tmp_path):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def assert_stopped_cleanly(tmp_path, run: BenchRun, number: int, output: str) -> None:
    assert run.process.returncode == 128 + number, output
    assert f"interrupted ({signal.Signals(number).name})" in output and "bench run --resume" in output
    assert cells(tmp_path / "results") == []  # nothing half-done is recorded
    assert cell_processes(tmp_path) == []


@needs_pytorch
def test_sigterm_stops_the_running_cell_and_records_nothing(tmp_path, cleanup):
    run = BenchRun(tmp_path, *SMOKE, "--mode", "eager", "--epochs", str(EPOCHS))
    cleanup.append(run.process)
    wait_for(lambda: any("epoch 1/" in line for line in run.lines), 300, "first epoch of the cell")
    cell = next(process for process in cell_processes(tmp_path) if process.ppid() == run.process.pid)
    assert cell.environ()["BENCH_PARENT_PID"] == str(run.process.pid)
    assert_stopped_cleanly(tmp_path, run, signal.SIGTERM, run.stop(signal.SIGTERM))


def test_sighup_stops_the_cell_and_its_workers(tmp_path, cleanup):
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n{FAKE_CELL}")
    fake.chmod(0o755)
    run = BenchRun(tmp_path, *SMOKE, "--python", f"pytorch={fake}")
    cleanup.append(run.process)
    wait_for(lambda: len(cell_processes(tmp_path)) == 2, 120, "cell and worker")
    assert_stopped_cleanly(tmp_path, run, signal.SIGHUP, run.stop(signal.SIGHUP))


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_parent(tmp_path, cleanup, command: list[str], ready: str) -> None:
    """Start COMMAND from PARENT, SIGKILL the parent once the child printed READY: the child must end within 10 s."""
    log = tmp_path / "child.log"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(log), *command], cwd=REPO, env=ENV,
                              stdout=subprocess.PIPE, text=True)
    cleanup.append(parent)
    child = psutil.Process(int(parent.stdout.readline()))
    wait_for(lambda: log.is_file() and ready in log.read_text(), 300, f"{ready!r} from the child")
    parent.kill()
    parent.wait()
    try:
        wait_for(lambda: gone(child), 10, "end of the orphaned child")
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


@needs_pytorch
def test_a_cell_ends_when_its_harness_is_killed_outright(tmp_path, cleanup):
    config = CellConfig(run_id="lifeline", cell_id="pytorch--mnist_mlp", framework="pytorch",
                        adapter="frameworks.pytorch:PyTorchAdapter", task="mnist_mlp",
                        dataset="synthetic", data_folder=None, device="cpu", mode="eager", repeat=0, seed=0,
                        epochs=EPOCHS, batch_size=128, train_samples=512, test_samples=256,
                        spawned_at=time.time(), result_path=str(tmp_path / "result.json"))
    config_path = tmp_path / "cell.config.json"
    config_path.write_text(config.to_json())
    kill_parent(tmp_path, cleanup, [PYTORCH.python, "-m", "frameworks.child", str(config_path)], '"event": "epoch"')
    assert not (tmp_path / "result.json").exists()


def test_without_prctl_a_watcher_ends_the_child(tmp_path, cleanup):
    kill_parent(tmp_path, cleanup, [sys.executable, "-c", TIED, "no-prctl", "600"], "tied")


def test_a_child_whose_harness_is_already_gone_ends_at_once():
    gone = subprocess.Popen(["true"])
    gone.wait()
    completed = subprocess.run([sys.executable, "-c", TIED, "prctl", "60"], cwd=REPO, capture_output=True,
                               text=True, timeout=60, env={**ENV, "BENCH_PARENT_PID": str(gone.pid)})
    assert completed.returncode == -signal.SIGKILL and "tied" not in completed.stdout


def test_a_wrapper_between_harness_and_cell_is_no_reason_to_end():
    """An interpreter given with --python may be a script that runs python without exec: the cell's parent is
    then the wrapper, while the harness is alive."""
    completed = subprocess.run(["sh", "-c", '"$@"; true', "wrapper", sys.executable, "-c", TIED, "prctl", "2"],
                               cwd=REPO, capture_output=True, text=True, timeout=60,
                               env={**ENV, "BENCH_PARENT_PID": str(os.getpid())})
    assert completed.returncode == 0 and completed.stdout == "tied\n", completed.stderr
