"""PyTorch adapter: nn.Sequential, torch.optim, eager or torch.compile.

Framework-specific choices, all written down here:
- Layout NCHW and OIHW conv kernels: the spec's canonical layouts, no conversion except nn.Linear's (out, in)
  weight, which is the transpose of the spec's (in, out) kernel.
- Adam: torch's default eps is 1e-8; the spec's 1e-7 is set explicitly. torch adds eps to sqrt(v_hat) after bias
  correction: the spec's formula (Kingma & Ba, Algorithm 1), so nothing to convert.
- SGD momentum: torch's formula v = m*v + g; w -= lr*v is the spec's classic momentum (dampening 0, no Nesterov).
- Loss: F.cross_entropy on logits with int64 labels (mean over the batch).
- Train/eval mode (dropout) is switched only when it changes: Module.train() walks every submodule, ~20 us a
  call, a cost a hand-written loop does not pay per step.
- Modes: "native" is eager PyTorch, the way PyTorch's own tutorials and most users train; "eager" is the same.
  "compiled" is torch.compile(model) with the default inductor backend; the first steps include compilation and
  are reported as warm-up. The optimizer step runs eagerly in every mode, as in the PyTorch tutorials (foreach
  kernels). Inductor's on-disk caches go where the harness points TORCHINDUCTOR_CACHE_DIR and TRITON_CACHE_DIR
  (cold, per cell, by default: bench.runner).
- Threads: torch reads OMP_NUM_THREADS, which the harness sets to the CPUs this process may use; recorded.
- GPU: torch.backends.cudnn.benchmark = True (the PyTorch performance tuning guide's advice; TensorFlow, JAX and
  MXNet autotune convolutions by default). TF32 stays off (NVIDIA_TF32_OVERRIDE=0 and torch's own switches)
  except at precision tf32, which turns both of torch's switches on (matmul and cuDNN).
- Precision, the recipe of PyTorch's AMP documentation ("Automatic Mixed Precision examples"): bf16 and fp16 run
  the forward pass and the loss under torch.autocast(device, dtype) (weights, gradients and Adam's state stay
  float32; autocast runs cross_entropy in float32); fp16 adds torch.amp.GradScaler (dynamic loss scaling, its
  defaults: initial scale 2^16, growth x2 every 2000 clean steps), whose step checks the gradients for inf/NaN
  (a device-to-host read per step, as in every AMP training loop). predict runs under the same autocast and
  returns float32 logits. On CPU, autocast's bf16 runs oneDNN's bf16 kernels where the CPU has them.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from frameworks.contract import Adapter
from frameworks.errors import Unsupported


def _mnist_mlp(dropout: tuple[float, ...]) -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 128), nn.ReLU(),
        nn.Dropout(dropout[0]),
        nn.Linear(128, 10),
    )


def _cifar_cnn(dropout: tuple[float, ...]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 50, 3, padding="same"), nn.ReLU(),
        nn.Conv2d(50, 50, 3, padding="same"),
        nn.MaxPool2d(2), nn.ReLU(), nn.Dropout(dropout[0]),
        nn.Conv2d(50, 100, 3, padding="same"), nn.ReLU(),
        nn.Conv2d(100, 100, 3, padding="same"),
        nn.MaxPool2d(2), nn.ReLU(), nn.Dropout(dropout[1]),
        nn.Flatten(),  # NCHW flattens in (C, H, W) order: the spec's canonical order
        nn.Linear(100 * 8 * 8, 512), nn.ReLU(),
        nn.Dropout(dropout[2]),
        nn.Linear(512, 10),
    )


MODELS = {"mnist_mlp": _mnist_mlp, "cifar_cnn": _cifar_cnn}
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class PyTorchAdapter(Adapter):
    data_layout = "NCHW"
    has_gpu_allocator_counter = True

    def __init__(self, task, device, mode, seed, precision="fp32"):
        super().__init__(task, device, mode, seed, precision)
        if device == "cuda" and not torch.cuda.is_available():
            raise Unsupported(f"torch {torch.__version__} sees no CUDA device")
        self.torch_device = torch.device(device)
        torch.manual_seed(seed)  # dropout masks
        if device == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        self.autocast_dtype = AUTOCAST_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device) if precision == "fp16" else None

    @staticmethod
    def framework_version() -> str:
        return torch.__version__

    def build(self, weights: dict[str, np.ndarray]) -> None:
        model = MODELS[self.task.name](self.task.dropout)
        self.layers = [module for module in model if isinstance(module, (nn.Linear, nn.Conv2d))]
        with torch.no_grad():
            for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
                kernel = weights[f"{spec_layer.name}.kernel"]
                layer.weight.copy_(torch.from_numpy(kernel.T if isinstance(layer, nn.Linear) else kernel))
                layer.bias.copy_(torch.from_numpy(weights[f"{spec_layer.name}.bias"]))
        self.model = model.to(self.torch_device)
        self.forward = torch.compile(self.model) if self.mode == "compiled" else self.model
        spec = self.task.optimizer
        if spec.name == "adam":
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec.learning_rate,
                                              betas=(spec.beta1, spec.beta2), eps=spec.epsilon,
                                              weight_decay=spec.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=spec.learning_rate,
                                             momentum=spec.momentum, dampening=0.0, nesterov=spec.nesterov,
                                             weight_decay=spec.weight_decay)

    def execution(self) -> dict[str, str]:
        precision = {"fp32": "float32, TF32 off", "tf32": "float32 weights, TF32 matmuls and convolutions",
                     "bf16": "torch.autocast bfloat16, float32 weights",
                     "fp16": "torch.autocast float16 + GradScaler, float32 weights"}[self.precision]
        if self.mode == "compiled":
            return {"runs_as": "inductor (torch.compile of the model; backward by AOTAutograd)",
                    "optimizer_update": "outside the compiled region (eager foreach kernels)", "precision": precision}
        return {"runs_as": "op by op (eager)", "optimizer_update": "op by op (eager foreach kernels)",
                "precision": precision}

    def _autocast(self):
        """torch.autocast at the cell's 16-bit type; a no-op context at fp32 and tf32."""
        return torch.autocast(self.torch_device.type, dtype=self.autocast_dtype or torch.float32,
                              enabled=self.autocast_dtype is not None)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.torch_device, non_blocking=True)

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> Any:
        if not self.model.training:
            self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = nn.functional.cross_entropy(self.forward(self._tensor(images)), self._tensor(labels))
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def predict(self, images: np.ndarray) -> np.ndarray:
        if self.model.training:
            self.model.eval()
        with torch.no_grad(), self._autocast():
            return self.forward(self._tensor(images)).float().cpu().numpy()

    def weights(self) -> dict[str, np.ndarray]:
        weights = {}
        for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
            kernel = layer.weight.detach().cpu().numpy()
            weights[f"{spec_layer.name}.kernel"] = kernel.T if isinstance(layer, nn.Linear) else kernel
            weights[f"{spec_layer.name}.bias"] = layer.bias.detach().cpu().numpy()
        return weights

    def parameter_count(self) -> int:
        return sum(parameter.numel() for parameter in self.model.parameters() if parameter.requires_grad)

    def synchronize(self) -> None:
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize(self.torch_device)

    def matmul_step(self, size: int) -> Callable[[], None]:
        a, b = (torch.rand(size, size, device=self.torch_device) for _ in range(2))

        def step() -> None:
            torch.mm(a, b)
            self.synchronize()
        return step

    def gpu_memory_peak_bytes(self) -> int | None:
        if self.torch_device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated(self.torch_device))

    def settings(self) -> dict[str, Any]:
        return {"intra_op_threads": torch.get_num_threads(),
                "compile_backend": "inductor" if self.mode == "compiled" else None,
                "cudnn_benchmark": torch.backends.cudnn.benchmark if self.device == "cuda" else None,
                "inductor_cache_dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR") if self.mode == "compiled" else None}
