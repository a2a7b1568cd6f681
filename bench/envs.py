"""One virtual environment per framework, built from its pinned requirements file.

An environment's identity is a pure function of (Python version, platform, requirements text): its folder is
named by that hash under the user cache, outside any clone, so every clone reuses it and a changed pin builds a
new one. A user with their own stack (a CUDA build, a conda env) passes `--python FRAMEWORK=PATH` instead.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.datasets import cache_root
from bench.registry import SOURCE_ROOT, Framework
from frameworks.errors import UserError

READY_MARKER = ".bench-ready"
PROBE_TIMEOUT_S = 180


@dataclass(frozen=True)
class Interpreter:
    python: str
    origin: str  # "managed" (built by bench setup) or "user" (--python FRAMEWORK=PATH)


def env_key(framework: Framework) -> str:
    material = f"{sys.version_info.major}.{sys.version_info.minor}\n{platform.machine()}\n"
    material += framework.requirements.read_text()
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def env_dir(framework: Framework) -> Path:
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_root() / "envs" / f"{framework.env}-{version}-{env_key(framework)}"


def _python_in(folder: Path) -> Path:
    return folder / "bin" / "python"


def managed_python(framework: Framework) -> Path | None:
    """The managed environment's interpreter if it was built completely, else None."""
    folder = env_dir(framework)
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


def interpreter_for(framework: Framework, overrides: dict[str, str]) -> Interpreter | None:
    if framework.name in overrides:
        return Interpreter(overrides[framework.name], "user")
    python = managed_python(framework)
    return Interpreter(str(python), "managed") if python else None


def build_env(framework: Framework, log: Callable[[str], None]) -> Interpreter:
    """Create (or reuse) the managed environment; pip's output goes to `log` line by line."""
    folder = env_dir(framework)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs building the same environment wait for each other
        if not (folder / READY_MARKER).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a half-built environment from an interrupted setup
            for command in ([sys.executable, "-m", "venv", str(folder)],
                            [str(_python_in(folder)), "-m", "pip", "install", "--no-input",
                             "-r", str(framework.requirements)]):
                log("$ " + " ".join(command))
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for line in process.stdout:
                    log(line.rstrip())
                if process.wait() != 0:
                    raise UserError(f"could not build the {framework.name} environment in {folder}: "
                                    f"`{' '.join(command[-4:])}` exited with {process.returncode}")
            (folder / READY_MARKER).write_text(framework.requirements.read_text())
    return Interpreter(str(_python_in(folder)), "managed")


def probe(framework: Framework, python: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[str | None, str | None]:
    """(version, None) if the framework imports in that interpreter, else (None, why not)."""
    code = (f"import os; os.environ.update({dict(framework.environment)!r}); "
            f"import {framework.import_name}, importlib.metadata as m, json; "
            f"print(json.dumps(m.version({framework.distribution!r})))")
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
