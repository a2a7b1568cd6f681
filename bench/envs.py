"""One virtual environment per framework and device, built from its pinned requirements file.

An environment's identity is a pure function of (Python version, platform, requirements text): its folder is
named by that hash under the user cache, outside any clone, so every clone reuses it and a changed pin builds a
new one. Each framework has a CPU environment (frameworks/requirements/ENV.txt) and a CUDA one
(frameworks/requirements/cuda/ENV.txt, whose first line says which CUDA major version its build needs from the
driver: `# bench: CUDA 12`); a CUDA environment is built only where the driver can run it. A user with their own
stack (a conda env, another CUDA build) passes `--python FRAMEWORK=PATH` instead.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench import machine
from bench.datasets import cache_root
from bench.registry import SOURCE_ROOT, Framework
from frameworks.errors import UserError

READY_MARKER = ".bench-ready"
PROBE_TIMEOUT_S = 180


@dataclass(frozen=True)
class Interpreter:
    python: str
    origin: str  # "managed" (built by bench setup) or "user" (--python FRAMEWORK=PATH)


def env_key(framework: Framework, device: str = "cpu") -> str:
    material = f"{sys.version_info.major}.{sys.version_info.minor}\n{platform.machine()}\n"
    material += framework.requirements_for(device).read_text()
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def env_dir(framework: Framework, device: str = "cpu") -> Path:
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    kind = "-cuda" if device == "cuda" else ""
    return cache_root() / "envs" / f"{framework.env}{kind}-{version}-{env_key(framework, device)}"


def cuda_needed(framework: Framework) -> int:
    """The CUDA major version the framework's CUDA build needs the driver to support (its file's first line)."""
    path = framework.requirements_for("cuda")
    found = re.match(r"# bench: CUDA (\d+)", path.read_text())
    if not found:
        raise AssertionError(f"{path}: the first line must say `# bench: CUDA N`")
    return int(found.group(1))


def setup_command(name: str, device: str) -> str:
    """The command that builds NAME's managed environment for DEVICE."""
    return f"bench setup{' --device cuda' if device == 'cuda' else ''} {name}"


def require_cuda_driver(frameworks: list[Framework]) -> None:
    """Fail with one line, before anything is built, where the machine cannot run these frameworks' CUDA builds: no
    NVIDIA driver, or one too old for a build's CUDA major version (CUDA's minor-version compatibility lets a
    driver for CUDA N.x run any N.y build)."""
    gpus = machine.gpus()
    if not gpus:
        raise UserError("--device cuda: no NVIDIA GPU driver found (nvidia-smi); install the NVIDIA driver, or "
                        "build the CPU environments with `bench setup`")
    driver = gpus[0].get("cuda") or "0"
    major = int(driver.split(".")[0]) if driver.split(".")[0].isdigit() else 0
    needed = {framework.name: cuda_needed(framework) for framework in frameworks}
    short = [f"{name} (CUDA {version})" for name, version in needed.items() if version > major]
    if short:
        raise UserError(f"--device cuda: the NVIDIA driver {gpus[0].get('driver')} supports CUDA {driver}, too old "
                        f"for {', '.join(short)}; install a driver for CUDA {max(needed.values())} or "
                        f"newer, or give those frameworks an interpreter of your own with --python NAME=PATH")


def _python_in(folder: Path) -> Path:
    return folder / "bin" / "python"


def planned_interpreter(framework: Framework, device: str = "cpu") -> Interpreter:
    """The managed environment's interpreter where it is, or will be once built (on a Ray node: the same path)."""
    return Interpreter(str(_python_in(env_dir(framework, device))), "managed")


def managed_python(framework: Framework, device: str = "cpu") -> Path | None:
    """The managed environment's interpreter if it was built completely, else None."""
    folder = env_dir(framework, device)
    return _python_in(folder) if (folder / READY_MARKER).is_file() else None


def parse_python_overrides(values: list[str] | None, resolve: Callable[[str], Framework]) -> dict[str, str]:
    """`--python FRAMEWORK=PATH` values as {framework name: interpreter path}."""
    overrides = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not path:
            raise UserError(f"--python expects FRAMEWORK=PATH. Received: {value!r}")
        if not Path(path).is_file():
            raise UserError(f"--python {value}: no interpreter at {path}")
        overrides[resolve(name).name] = path
    return overrides


def interpreter_for(framework: Framework, overrides: dict[str, str], device: str = "cpu") -> Interpreter | None:
    if framework.name in overrides:
        return Interpreter(overrides[framework.name], "user")
    python = managed_python(framework, device)
    return Interpreter(str(python), "managed") if python else None


def build_env(framework: Framework, log: Callable[[str], None], device: str = "cpu") -> Interpreter:
    """Create (or reuse) the managed environment for DEVICE; pip's output goes to `log` line by line.

    A CUDA build is installed without pip's find-links (PIP_FIND_LINKS): a local folder of CPU wheels, as on
    machines that cache them, would otherwise satisfy `torch==2.13.0` with its CPU build."""
    folder = env_dir(framework, device)
    requirements = framework.requirements_for(device)
    pip_environment = {key: value for key, value in os.environ.items()
                       if not (device == "cuda" and key == "PIP_FIND_LINKS")}
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs building the same environment wait for each other
        if not (folder / READY_MARKER).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a half-built environment from an interrupted setup
            for command in ([sys.executable, "-m", "venv", str(folder)],
                            [str(_python_in(folder)), "-m", "pip", "install", "--no-input",
                             "-r", str(requirements)]):
                log("$ " + " ".join(command))
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                           env=pip_environment)
                for line in process.stdout:
                    log(line.rstrip())
                if process.wait() != 0:
                    raise UserError(f"could not build the {framework.name} environment in {folder}: "
                                    f"`{' '.join(command[-4:])}` exited with {process.returncode}")
            (folder / READY_MARKER).write_text(requirements.read_text())
    return Interpreter(str(_python_in(folder)), "managed")


def probe(framework: Framework, python: str, timeout_s: float = PROBE_TIMEOUT_S,
          device: str = "cpu") -> tuple[str | None, str | None]:
    """(version, None) if the framework imports in that interpreter, else (None, why not)."""
    code = (f"import os; os.environ.update({dict(framework.environment)!r}); "
            f"import {framework.import_name}, importlib.metadata as m, json; "
            f"print(json.dumps(m.version({framework.distribution_for(device)!r})))")
    try:
        completed = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout_s,
                                   cwd=SOURCE_ROOT)
    except subprocess.TimeoutExpired:
        return None, f"importing {framework.import_name} took over {timeout_s:g} s"
    except OSError as error:
        return None, f"cannot start {python}: {error.strerror}"
    if completed.returncode != 0:
        lines = (completed.stderr.strip() or f"exit code {completed.returncode}").splitlines()
        return None, lines[-1]
    return json.loads(completed.stdout.strip().splitlines()[-1]), None
