"""The frameworks the suite knows: name -> adapter class path, pinned requirements, aliases, what each cannot run
(`limits`) and the environment its GPU cells get (`gpu_environment`).

Adding a framework is one adapter file under frameworks/, its requirements files (frameworks/requirements/ENV.txt
for the CPU build, frameworks/requirements/cuda/ENV.txt for the CUDA build) and one entry here. Classes are named
as "module:Class" strings and imported only inside a cell's child process, so the harness never imports a framework; everything else here is plain data the harness reads as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from frameworks.errors import UserError

SOURCE_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_DIR = SOURCE_ROOT / "frameworks" / "requirements"


#: Set for every GPU cell, with each framework's own `gpu_environment`, and recorded with it (`gpu_policy`): each
#: framework allocates as it goes instead of reserving the device up front (so memory figures compare: TensorFlow's
#: TF_FORCE_GPU_ALLOW_GROWTH, JAX's XLA_PYTHON_CLIENT_PREALLOCATE, Paddle's FLAGS_allocator_strategy; PyTorch and
#: MXNet allocate as they go by default), float32 means float32 (no TF32 in cuBLAS/cuDNN for anyone, at every
#: precision but tf32: the one variable below, shared by all; the adapters also set their own switches), and every
#: framework autotunes its convolutions (TensorFlow, JAX and MXNet do by default, set explicitly where a variable
#: exists; PyTorch's adapter sets cudnn.benchmark; Paddle's switch is FLAGS_cudnn_exhaustive_search).
SHARED_GPU_ENVIRONMENT: tuple[tuple[str, str], ...] = (("NVIDIA_TF32_OVERRIDE", "0"),)
TENSORFLOW_GPU_ENVIRONMENT = (("TF_FORCE_GPU_ALLOW_GROWTH", "true"), ("TF_CUDNN_USE_AUTOTUNE", "1"))
JAX_GPU_ENVIRONMENT = (("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),)


@dataclass(frozen=True)
class Limit:
    """A combination that cannot run, with why: the planner records its cells "unsupported" with `why` as the
    reason, without starting a process. Each axis holds the value it applies to, or None for any:

    - `device`: "cpu" or "cuda";
    - `mode`: "native", "eager" or "compiled" (bench.settings.MODES);
    - `origin`: the interpreter's origin (bench.envs.Interpreter.origin): "managed" (the environment built from
      frameworks/requirements) or "user" (--python FRAMEWORK=PATH, whose build the harness cannot know);
    - `precision`: "fp32", "tf32", "bf16" or "fp16" (bench.settings.PRECISIONS).

    A new axis is one more field defaulting to None here, the same field on bench.runner.Cell, and one more pair
    in `applies`; the limits declared before it keep meaning "at any value" of it. What only the running
    framework can find out stays a run-time `frameworks.errors.Unsupported`.
    """
    why: str
    device: str | None = None
    mode: str | None = None
    origin: str | None = None
    precision: str | None = None

    def applies(self, device: str, mode: str, origin: str, precision: str = "fp32") -> bool:
        return all(wanted is None or wanted == given
                   for wanted, given in ((self.device, device), (self.mode, mode), (self.origin, origin),
                                         (self.precision, precision)))


#: Limits of the hardware, the same for every framework.
SHARED_LIMITS: tuple[Limit, ...] = (
    Limit("TF32 is a math mode of NVIDIA tensor cores (Ampere and newer); a CPU has none", device="cpu",
          precision="tf32"),
)


@dataclass(frozen=True)
class Framework:
    name: str
    adapter: str  # "module:Class"
    distribution: str  # the package whose version is the framework's version (in its CPU environment)
    import_name: str  # what `bench list` imports to check that the framework works
    aliases: tuple[str, ...] = ()
    env_name: str = ""  # the managed environment (and requirements file); default: the framework's name
    environment: tuple[tuple[str, str], ...] = ()  # environment variables the child process gets
    gpu_environment: tuple[tuple[str, str], ...] = ()  # its own variables for GPU cells, beside the shared ones
    limits: tuple[Limit, ...] = ()  # what it cannot run, declared (see Limit)
    cuda_distribution: str = ""  # the package of its CUDA build, where it has another name (tensorflow, ...)

    @property
    def env(self) -> str:
        return self.env_name or self.name

    @property
    def slug(self) -> str:
        """The name as it goes into file and folder names: keras[jax] -> keras-jax."""
        return self.name.replace("[", "-").replace("]", "")

    def gpu_policy(self, precision: str = "fp32") -> dict[str, str]:
        """Every variable a GPU cell of this framework gets: the shared policy and the framework's own. A tf32
        cell leaves out NVIDIA_TF32_OVERRIDE=0, which would forbid the math it measures."""
        shared = () if precision == "tf32" else SHARED_GPU_ENVIRONMENT
        return dict(shared + self.gpu_environment)

    def limit_for(self, device: str, mode: str, origin: str, precision: str = "fp32") -> Limit | None:
        """The first limit ruling this cell out (the hardware's, then the framework's), or None when it runs."""
        return next((limit for limit in SHARED_LIMITS + self.limits
                     if limit.applies(device, mode, origin, precision)), None)

    def requirements_for(self, device: str) -> Path:
        """The pinned requirements of its environment for DEVICE: the CPU build, or the CUDA build (cuda/)."""
        return REQUIREMENTS_DIR / ("cuda" if device == "cuda" else "") / f"{self.env}.txt"

    def distribution_for(self, device: str) -> str:
        return (device == "cuda" and self.cuda_distribution) or self.distribution


def _keras(backend: str, aliases: tuple[str, ...], gpu_environment: tuple[tuple[str, str], ...]) -> Framework:
    """Keras 3 on one backend: one adapter file, an environment per backend (keras-BACKEND.txt: only that backend
    installed, so no row loads another's framework), the backend chosen by KERAS_BACKEND; on a GPU the backend's
    own variables."""
    name = f"keras[{backend}]"
    return Framework(name, "frameworks.keras:KerasAdapter", "keras", "keras",
                     aliases=aliases, env_name=f"keras-{backend}", environment=(("KERAS_BACKEND", backend),),
                     gpu_environment=gpu_environment)


FRAMEWORKS: dict[str, Framework] = {fw.name: fw for fw in (
    Framework("pytorch", "frameworks.pytorch:PyTorchAdapter", "torch", "torch", aliases=("torch",)),
    Framework("tensorflow", "frameworks.tensorflow:TensorFlowAdapter", "tensorflow-cpu", "tensorflow",
              aliases=("tf",), gpu_environment=TENSORFLOW_GPU_ENVIRONMENT, cuda_distribution="tensorflow"),
    _keras("tensorflow", ("keras", "keras-tensorflow", "keras-tf"), TENSORFLOW_GPU_ENVIRONMENT),
    _keras("jax", ("keras-jax",), JAX_GPU_ENVIRONMENT),
    _keras("torch", ("keras-torch",), ()),
    Framework("mxnet", "frameworks.mxnet:MXNetAdapter", "mxnet", "mxnet", aliases=("mx",),
              gpu_environment=(("MXNET_CUDNN_AUTOTUNE_DEFAULT", "1"),), cuda_distribution="mxnet-cu117"),
    Framework("paddle", "frameworks.paddle:PaddleAdapter", "paddlepaddle", "paddle", aliases=("paddlepaddle",),
              gpu_environment=(("FLAGS_allocator_strategy", "auto_growth"), ("FLAGS_cudnn_exhaustive_search", "1")),
              cuda_distribution="paddlepaddle-gpu"),
)}


def resolve_framework(name: str) -> Framework:
    wanted = name.strip().lower()
    for framework in FRAMEWORKS.values():
        if wanted == framework.name or wanted in framework.aliases:
            return framework
    raise UserError(f"unknown framework {name!r}; choose from: {', '.join(FRAMEWORKS)}. Received: {name!r}")

