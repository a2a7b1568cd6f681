"""The frameworks the suite knows: name -> adapter class path, pinned requirements, aliases.

Adding a framework is one adapter file under frameworks/, one requirements file under frameworks/requirements/
and one entry here. Classes are named as "module:Class" strings and imported only inside a cell's child process,
so the harness never imports a framework.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from frameworks.errors import UserError

SOURCE_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_DIR = SOURCE_ROOT / "frameworks" / "requirements"


@dataclass(frozen=True)
class Framework:
    name: str
    adapter: str  # "module:Class"
    distribution: str  # the package whose version is the framework's version
    import_name: str  # what `bench list` imports to check that the framework works
    aliases: tuple[str, ...] = ()
    env_name: str = ""  # the managed environment (and requirements file); default: the framework's name
    environment: tuple[tuple[str, str], ...] = ()  # environment variables the child process gets

    @property
    def env(self) -> str:
        return self.env_name or self.name

    @property
    def requirements(self) -> Path:
        return REQUIREMENTS_DIR / f"{self.env}.txt"


def _keras(backend: str, *aliases: str) -> Framework:
    """Keras 3 on one backend: one adapter file, an environment per backend (keras-BACKEND.txt: only that backend
    installed, so no row loads another's framework), the backend chosen by KERAS_BACKEND."""
    return Framework(f"keras[{backend}]", "frameworks.keras:KerasAdapter", "keras", "keras",
                     aliases=aliases, env_name=f"keras-{backend}", environment=(("KERAS_BACKEND", backend),))


FRAMEWORKS: dict[str, Framework] = {fw.name: fw for fw in (
    Framework("pytorch", "frameworks.pytorch:PyTorchAdapter", "torch", "torch", aliases=("torch",)),
    Framework("tensorflow", "frameworks.tensorflow:TensorFlowAdapter", "tensorflow-cpu", "tensorflow",
              aliases=("tf",)),
    _keras("tensorflow", "keras", "keras-tensorflow", "keras-tf"),
    _keras("jax", "keras-jax"),
    _keras("torch", "keras-torch"),
    Framework("mxnet", "frameworks.mxnet:MXNetAdapter", "mxnet", "mxnet", aliases=("mx",)),
    Framework("paddle", "frameworks.paddle:PaddleAdapter", "paddlepaddle", "paddle", aliases=("paddlepaddle",)),
)}


def resolve_framework(name: str) -> Framework:
    wanted = name.strip().lower()
    for framework in FRAMEWORKS.values():
        if wanted == framework.name or wanted in framework.aliases:
            return framework
    raise UserError(f"unknown framework {name!r}; choose from: {', '.join(FRAMEWORKS)}. Received: {name!r}")

