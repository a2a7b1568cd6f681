"""Each framework's CPU and CUDA environments: pinned files, where they are built, and the driver check that comes
before any CUDA build (this machine has no NVIDIA driver, so the check is what a user here sees)."""
import pytest

from bench import cli, envs, machine
from bench.registry import FRAMEWORKS
from frameworks.errors import UserError


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_every_framework_has_a_pinned_cuda_build_saying_what_driver_it_needs(name):
    framework = FRAMEWORKS[name]
    cuda = framework.requirements_for("cuda")
    assert cuda.is_file() and cuda.parent.name == "cuda" and cuda.name == framework.requirements_for("cpu").name
    assert envs.cuda_needed(framework) in (11, 12, 13)
    pins = [line for line in cuda.read_text().splitlines() if line and not line.startswith(("#", "--"))]
    assert pins and all("==" in line for line in pins), pins  # every requirement pinned
    assert envs.env_dir(framework, "cuda") != envs.env_dir(framework, "cpu")
    assert f"{framework.env}-cuda-py" in envs.env_dir(framework, "cuda").name


def test_cuda_builds_are_the_frameworks_own():
    assert "tensorflow[and-cuda]==2.21.0" in FRAMEWORKS["tensorflow"].requirements_for("cuda").read_text()
    assert "jax[cuda12]==0.10.2" in FRAMEWORKS["keras[jax]"].requirements_for("cuda").read_text()
    assert "mxnet-cu117==1.9.1" in FRAMEWORKS["mxnet"].requirements_for("cuda").read_text()
    paddle = FRAMEWORKS["paddle"].requirements_for("cuda").read_text()
    assert "paddlepaddle-gpu==3.3.1" in paddle and "--extra-index-url https://www.paddlepaddle.org.cn/" in paddle
    assert FRAMEWORKS["tensorflow"].distribution_for("cuda") == "tensorflow"
    assert FRAMEWORKS["pytorch"].distribution_for("cuda") == FRAMEWORKS["pytorch"].distribution_for("cpu")


def test_the_driver_is_checked_before_any_cuda_build(monkeypatch):
    frameworks = [FRAMEWORKS["pytorch"], FRAMEWORKS["tensorflow"], FRAMEWORKS["mxnet"]]
    monkeypatch.setattr(machine, "gpus", lambda: [])
    with pytest.raises(UserError, match="no NVIDIA GPU driver found"):
        envs.require_cuda_driver(frameworks)
    monkeypatch.setattr(machine, "gpus", lambda: [{"name": "H100", "driver": "550.54", "cuda": "12.4"}])
    with pytest.raises(UserError, match=r"supports CUDA 12\.4, too old for pytorch \(CUDA 13\); install a driver "
                                        r"for CUDA 13 or newer"):
        envs.require_cuda_driver(frameworks)
    envs.require_cuda_driver(frameworks[1:])  # CUDA 12 and 11 builds run on a CUDA 12.4 driver
    monkeypatch.setattr(machine, "gpus", lambda: [{"name": "H100", "driver": "580.65", "cuda": "13.0"}])
    envs.require_cuda_driver(frameworks)


def test_setup_for_cuda_without_a_driver_is_one_line_and_builds_nothing(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "gpus", lambda: [])
    monkeypatch.setattr(envs, "build_env", lambda *args, **kwargs: pytest.fail("built despite no driver"))
    assert cli.main(["setup", "--device", "cuda"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--device cuda: no NVIDIA GPU driver found (nvidia-smi)" in error
    assert "Traceback" not in error
