"""PaddlePaddle adapter: paddle.nn.Sequential, paddle.optimizer, dynamic graph or paddle.jit.to_static.

Framework-specific choices, all written down here:
- Layout NCHW (nn.Conv2D's default data_format) and OIHW conv kernels: the spec's canonical layouts. nn.Linear's
  weight is (in, out), the spec's dense kernel as it is: unlike torch's, nothing is transposed. Conv2D
  padding "SAME" (3x3, stride 1: one pixel each side), MaxPool2D(2) (stride = kernel), Flatten from axis 1.
- Adam: paddle's default epsilon is 1e-8; the spec's 1e-7 is set explicitly (lazy_mode, amsgrad off). Paddle's
  docstring writes the update as lr*sqrt(1-beta2^t)/(1-beta1^t) * m/(sqrt(v) + eps), eps on the uncorrected
  sqrt(v) (Keras's "epsilon hat"), but its kernel scales eps by sqrt(1-beta2^t), which is torch's update
  m_hat/(sqrt(v_hat) + eps): three steps with gradients near eps matched torch's formula to 2e-6 (relative,
  float64 reference) and missed the docstring's by 0.3.
- SGD momentum: paddle.optimizer.Momentum, velocity = m*velocity + g; w -= lr*velocity: the spec's classic
  momentum, as torch's (no dampening, use_nesterov from the spec, rescale_grad 1). weight_decay None where the
  spec's is 0 (a float would be L2 added to the gradient, as torch's); no gradient clipping in either optimizer.
- Loss: nn.functional.cross_entropy on logits (softmax inside) with int64 labels of shape (N,), mean over the
  batch. Train/eval mode (dropout) is switched only when it changes, as a hand-written loop does.
- Dropout: nn.Dropout's default mode "upscale_in_train" is inverted dropout, as torch's (kept units scaled by
  1/(1-p) in training, identity in eval). Masks come from paddle's generator, seeded by paddle.seed(seed).
- Modes: "native" is the dynamic graph (dygraph), Paddle 3's default and what its training guides use; "eager" is
  the same. "compiled": paddle.jit.to_static(model) with Paddle 3's defaults: SOT (bytecode capture, full_graph False)
  turns the whole forward into one PIR program, whose backward also runs as a static program; the optimizer
  step runs eagerly, as in the PyTorch adapter. The CINN compiler it asks for exists only in CUDA builds with
  CINN, so here it falls back to PHI kernels (recorded): the same kernels as eager, bit-identical results.
  Programs are specialised on input shape and train/eval mode: a new shape or mode retraces (warm-up).
- Threads: importing paddle sets OMP_NUM_THREADS=1 unless the environment sets it, which would leave Paddle's
  CPU math (MKL, Eigen) one core where the other frameworks use all. The harness sets OMP_NUM_THREADS to the core
  count for every cell (bench/runner.py), so Paddle gets the whole machine like the others; the value and
  FLAGS_paddle_num_threads (an inference-predictor setting) are recorded. oneDNN stays off (FLAGS_use_onednn
  False, Paddle's dynamic-graph default).
- Precision: Paddle's AMP guide: bf16 and fp16 run the forward pass and the loss under
  paddle.amp.auto_cast(level="O1", dtype) (parameters and optimizer state float32; Paddle's white list in 16 bits,
  the rest float32), fp16 adds paddle.amp.GradScaler (dynamic loss scaling, its defaults: 2^16, x2 after 2000
  good steps, /2 on inf/NaN); predict runs under the same auto_cast and returns float32 logits. On a CPU, auto_cast "makes no
  effect" (Paddle's own warning: it runs only on CUDA, XPU and custom places), so bf16 and fp16 CPU cells are
  Unsupported instead of float32 under another name. tf32 sets the CUDA build's FLAGS_allow_tf32_cublas and
  FLAGS_allow_tf32_cudnn on, every other precision off.
- Device: PyPI's paddlepaddle 3.x is a CPU-only build (GPU builds come from Paddle's own index); "cuda" needs a
  CUDA build and a visible GPU, else the cell is unsupported. On CPU every op has finished when it returns.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import paddle
from paddle import nn

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
        nn.Conv2D(3, 50, 3, padding="SAME"), nn.ReLU(),
        nn.Conv2D(50, 50, 3, padding="SAME"),
        nn.MaxPool2D(2), nn.ReLU(), nn.Dropout(dropout[0]),
        nn.Conv2D(50, 100, 3, padding="SAME"), nn.ReLU(),
        nn.Conv2D(100, 100, 3, padding="SAME"),
        nn.MaxPool2D(2), nn.ReLU(), nn.Dropout(dropout[1]),
        nn.Flatten(),  # NCHW flattens in (C, H, W) order: the spec's canonical order
        nn.Linear(100 * 8 * 8, 512), nn.ReLU(),
        nn.Dropout(dropout[2]),
        nn.Linear(512, 10),
    )


MODELS = {"mnist_mlp": _mnist_mlp, "cifar_cnn": _cifar_cnn}
AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


class PaddleAdapter(Adapter):
    data_layout = "NCHW"
    has_gpu_allocator_counter = True

    def __init__(self, task, device, mode, seed, precision="fp32"):
        super().__init__(task, device, mode, seed, precision)
        if device == "cuda":
            if not paddle.device.is_compiled_with_cuda():
                raise Unsupported(f"paddlepaddle {paddle.__version__} is a CPU-only build (PyPI's 3.x wheels are)")
            if paddle.device.cuda.device_count() == 0:
                raise Unsupported(f"paddlepaddle {paddle.__version__} sees no CUDA device")
            paddle.set_flags({"FLAGS_allow_tf32_cublas": precision == "tf32",
                              "FLAGS_allow_tf32_cudnn": precision == "tf32"})
        elif precision in AMP_DTYPES:
            raise Unsupported(f"paddlepaddle {paddle.__version__}: paddle.amp.auto_cast runs only on CUDA, XPU and "
                              f"custom places; on a CPU it makes no effect (no {precision})")
        paddle.set_device("gpu" if device == "cuda" else "cpu")
        self.amp_dtype = AMP_DTYPES.get(precision)
        self.scaler = paddle.amp.GradScaler() if precision == "fp16" else None
        paddle.seed(seed)  # dropout masks

    @staticmethod
    def framework_version() -> str:
        return paddle.__version__

    def build(self, weights: dict[str, np.ndarray]) -> None:
        model = MODELS[self.task.name](self.task.dropout)
        self.layers = [layer for layer in model if isinstance(layer, (nn.Linear, nn.Conv2D))]
        for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
            layer.weight.set_value(weights[f"{spec_layer.name}.kernel"])  # Linear (in, out), Conv OIHW: as is
            layer.bias.set_value(weights[f"{spec_layer.name}.bias"])
        self.model = model
        self.forward = paddle.jit.to_static(self.model) if self.mode == "compiled" else self.model
        spec = self.task.optimizer
        if spec.name == "adam":
            self.optimizer = paddle.optimizer.Adam(learning_rate=spec.learning_rate, beta1=spec.beta1,
                                                   beta2=spec.beta2, epsilon=spec.epsilon,
                                                   parameters=self.model.parameters(),
                                                   weight_decay=spec.weight_decay or None, grad_clip=None,
                                                   lazy_mode=False, amsgrad=False)
        else:
            self.optimizer = paddle.optimizer.Momentum(learning_rate=spec.learning_rate, momentum=spec.momentum,
                                                       parameters=self.model.parameters(),
                                                       use_nesterov=spec.nesterov,
                                                       weight_decay=spec.weight_decay or None, grad_clip=None,
                                                       rescale_grad=1.0)

    def execution(self) -> dict[str, str]:
        precision = {"fp32": "float32, TF32 off", "tf32": "float32, TF32 in cuBLAS and cuDNN",
                     "bf16": "paddle.amp.auto_cast O1 bfloat16, float32 parameters",
                     "fp16": "paddle.amp.auto_cast O1 float16 + GradScaler, float32 parameters"}[self.precision]
        if self.mode == "compiled":
            return {"runs_as": "static program (paddle.jit.to_static, SOT; PHI kernels without CINN on CPU)",
                    "optimizer_update": "outside the static program (dygraph)", "precision": precision}
        return {"runs_as": "op by op (dygraph)", "optimizer_update": "op by op (dygraph)", "precision": precision}

    def _auto_cast(self):
        return paddle.amp.auto_cast(enable=self.amp_dtype is not None, level="O1",
                                    dtype=self.amp_dtype or "float16")

    def _tensor(self, array: np.ndarray) -> paddle.Tensor:
        return paddle.to_tensor(array)  # onto the current device (set in __init__)

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> Any:
        if not self.model.training:
            self.model.train()
        with self._auto_cast():
            loss = nn.functional.cross_entropy(self.forward(self._tensor(images)), self._tensor(labels))
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.clear_grad()
        return loss.detach()

    def predict(self, images: np.ndarray) -> np.ndarray:
        if self.model.training:
            self.model.eval()
        with paddle.no_grad(), self._auto_cast():
            logits = self.forward(self._tensor(images))
        return (logits.astype("float32") if self.amp_dtype else logits).numpy()

    def weights(self) -> dict[str, np.ndarray]:
        weights = {}
        for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
            weights[f"{spec_layer.name}.kernel"] = layer.weight.numpy().astype(np.float32)
            weights[f"{spec_layer.name}.bias"] = layer.bias.numpy().astype(np.float32)
        return weights

    def parameter_count(self) -> int:
        return sum(int(parameter.size) for parameter in self.model.parameters() if parameter.trainable)

    def synchronize(self) -> None:
        if self.device == "cuda":  # CPU kernels run synchronously: nothing is queued
            paddle.device.cuda.synchronize()

    def matmul_step(self, size: int) -> Callable[[], None]:
        a, b = paddle.rand([size, size]), paddle.rand([size, size])  # on the device set in __init__

        def step() -> None:
            paddle.matmul(a, b)
            self.synchronize()
        return step

    def gpu_memory_peak_bytes(self) -> int | None:
        if self.device != "cuda":
            return None
        return int(paddle.device.cuda.max_memory_allocated())

    def settings(self) -> dict[str, Any]:
        flags = paddle.get_flags(["FLAGS_paddle_num_threads", "FLAGS_use_onednn", "FLAGS_enable_pir_api"])
        static = self.model.forward if self.mode == "compiled" else None
        return {"omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "paddle_num_threads": flags["FLAGS_paddle_num_threads"],
                "use_onednn": flags["FLAGS_use_onednn"],
                "pir": flags["FLAGS_enable_pir_api"],
                "to_static": type(static).__name__ if static is not None else None,  # Symbolic...: SOT capture
                "to_static_backend": static._kwargs["backend"].name if static is not None else None,
                "dropout_mode": "upscale_in_train"}
