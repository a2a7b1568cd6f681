"""MXNet adapter: Gluon HybridSequential, gluon.Trainer, imperative (eager) or hybridized (compiled).

Framework-specific choices, all written down here:
- Version: MXNet 1.9.1, the last release (2022). It imports only with numpy < 1.24, so it has an environment of
  its own (numpy 1.23.5). The PyPI wheel is CPU-only (with oneDNN/MKLDNN and OpenMP): device "cuda" needs an
  mxnet-cu1xx build (CUDA <= 11.7) and is reported as unsupported otherwise.
- Layout NCHW and OIHW conv kernels: the spec's canonical layouts (Conv2D's default layout="NCHW"), no conversion
  except nn.Dense's (out, in) weight, the transpose of the spec's (in, out) kernel. Flatten of NCHW is (C, H, W)
  order, the spec's. Every layer gets its input size (in_units / in_channels), so nothing is deferred: the
  parameters exist after `initialize` and the spec's weights replace them with `set_data`.
- 'Same' padding is Conv2D(padding=1) for the 3x3, stride-1 kernels of the spec.
- Loss: gluon.loss.SoftmaxCrossEntropyLoss on logits with sparse labels, one loss per sample. backward() on that
  vector sums the per-sample gradients (head gradient 1 each) and trainer.step(batch_size) scales them by
  1/batch_size (the optimizer's rescale_grad), so the gradient applied is that of the batch-mean loss, as in the
  spec. Labels are passed as float32 (MXNet's convention for class indices; exact for 0..9). Gradients are
  overwritten each step (grad_req 'write', the default), so no zeroing is needed.
- Adam: MXNet's default eps is 1e-8; the spec's 1e-7 is set explicitly. MXNet folds the bias correction into the
  step size (lr_t = lr*sqrt(1-b2^t)/(1-b1^t); w -= lr_t*m/(sqrt(v)+eps), the paper's "epsilon hat"), while the
  spec (Kingma & Ba, Algorithm 1; torch, Paddle) adds eps to sqrt(v_hat). The two agree when MXNet's eps is
  eps*sqrt(1-b2^t) at step t, so `_SpecAdam` sets exactly that before each update (one float per tensor and
  step, in Python, where MXNet computes lr_t anyway). Without it the MLP fails `bench parity`: a hidden unit with
  gradients ~1e-6 moves ~lr per step under the spec's formula and barely under MXNet's (31.6x larger eps at
  step 1). (MXNet's docstring writes the factor the other way round; optimizer.Adam.update is as above.)
- SGD momentum: MXNet's formula v = m*v - lr*g; w += v is torch's v = m*v + g; w -= lr*v scaled by -lr: the same
  for the spec's constant learning rate. Single-device SGD updates up to 4 tensors per kernel call
  (multi_sgd_mom_update, MXNET_OPTIMIZER_AGGREGATION_SIZE): the same arithmetic. A spec with nesterov=True gets
  MXNet's 'nag' (v = m*v + g; w -= lr*(g + m*v)), which is torch's nesterov=True.
- Set explicitly: wd (the spec's weight decay, 0), clip_gradient=None, multi_precision=False (float32 weights),
  lazy_update=False for Adam and SGD (it only affects row_sparse gradients, which these dense nets never have),
  kvstore=None (one device: gluon would pick none anyway), so the update runs in the Trainer, not in a KVStore.
- Modes: "native" is net.hybridize(), as the Gluon guides train for speed: forward and backward run as one cached
  graph (CachedOp). "compiled" adds static_alloc=True, static_shape=True (memory planned once, the shape fixed):
  Gluon's documented fastest setting. In both the first step builds the graph and is reported as warm-up, and the
  loss and the optimizer update run imperatively, as in the Gluon tutorials. "eager": not hybridized (imperative
  NDArray, op by op).
- Asynchrony: every MXNet call only queues work on the dependency engine; synchronize() is mx.nd.waitall(). The
  per-sample losses are returned as a queued NDArray and averaged on the host when read (after the timed window),
  so the step queues no op a hand-written loop would not.
- Dropout: gluon's Dropout is active only inside autograd.record() (train_mode) and is an identity for rate 0;
  masks come from MXNet's generator, seeded by mx.random.seed(seed).
- Threads: MXNet's defaults (engine ThreadedEnginePerDevice, OpenMP threads per operator as OMP_NUM_THREADS or
  one per core) are left as they are and recorded.
- Precision: MXNet's AMP (mxnet.contrib.amp, the Gluon AMP tutorial): amp.init(target_dtype) before the network
  exists patches the operators, so the listed ones run in 16 bits with float32 parameters and the rest (softmax,
  the loss) in float32. bf16 is oneDNN's bfloat16 AMP, on CPUs only (MXNet 1.9 has no bfloat16 GPU kernels);
  fp16 is CUDA's, with amp.init_trainer and amp.scale_loss (dynamic loss scaling, AMP's defaults), on GPUs only
  (its CPU build has no float16 AMP lists). Either elsewhere is Unsupported with that reason. The logits are cast
  to float32 before leaving the device (a bfloat16 NDArray's asnumpy is raw 16-bit words). tf32: MXNet has no
  switch of its own; its cuDNN convolutions use TF32 unless NVIDIA_TF32_OVERRIDE=0, which the harness leaves
  unset for tf32 cells only.
- GPU memory: MXNet has no allocator peak counter in its Python API (its pooled storage manager keeps freed
  blocks), so gpu_memory_peak_bytes is None; GPU memory for MXNet comes from NVML only.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.contrib import amp
from mxnet.gluon import nn

from frameworks.contract import Adapter
from frameworks.errors import Unsupported


def _mnist_mlp(dropout: tuple[float, ...]) -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(
        nn.Flatten(),
        nn.Dense(128, in_units=784), nn.Activation("relu"),
        nn.Dropout(dropout[0]),
        nn.Dense(10, in_units=128),
    )
    return net


def _cifar_cnn(dropout: tuple[float, ...]) -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(50, 3, padding=1, in_channels=3), nn.Activation("relu"),
        nn.Conv2D(50, 3, padding=1, in_channels=50),
        nn.MaxPool2D(2), nn.Activation("relu"), nn.Dropout(dropout[0]),
        nn.Conv2D(100, 3, padding=1, in_channels=50), nn.Activation("relu"),
        nn.Conv2D(100, 3, padding=1, in_channels=100),
        nn.MaxPool2D(2), nn.Activation("relu"), nn.Dropout(dropout[1]),
        nn.Flatten(),  # NCHW flattens in (C, H, W) order: the spec's canonical order
        nn.Dense(512, in_units=100 * 8 * 8), nn.Activation("relu"),
        nn.Dropout(dropout[2]),
        nn.Dense(10, in_units=512),
    )
    return net


MODELS = {"mnist_mlp": _mnist_mlp, "cifar_cnn": _cifar_cnn}


class _SpecAdam(mx.optimizer.Adam):
    """MXNet's Adam with eps rescaled each step to eps*sqrt(1-beta2^t): the spec's update (see above)."""

    def __init__(self, epsilon: float, **kwargs):
        super().__init__(epsilon=epsilon, **kwargs)
        self.spec_epsilon = epsilon

    def update(self, index, weight, grad, state):
        step = self._index_update_count.get(index, self.begin_num_update) + 1  # the t that update() will use
        self.epsilon = self.spec_epsilon * math.sqrt(1.0 - self.beta2 ** step)
        super().update(index, weight, grad, state)


AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


class MXNetAdapter(Adapter):
    data_layout = "NCHW"
    has_gpu_allocator_counter = False

    def __init__(self, task, device, mode, seed, precision="fp32"):
        super().__init__(task, device, mode, seed, precision)
        if device == "cuda":
            if mx.context.num_gpus() == 0:
                raise Unsupported(f"mxnet {mx.__version__} sees no GPU (the PyPI mxnet wheel is CPU-only; "
                                  "GPU builds are mxnet-cu1xx)")
            self.context = mx.gpu(0)
        else:
            self.context = mx.cpu()
        if (precision, device) in (("bf16", "cuda"), ("fp16", "cpu")):
            raise Unsupported(f"mxnet {mx.__version__}'s AMP runs bfloat16 on CPUs (oneDNN) and float16 on GPUs "
                              f"only: no {precision} on {device}")
        if precision in AMP_DTYPES:
            amp.init(target_dtype=AMP_DTYPES[precision])  # before the network exists: it patches the operators
        mx.random.seed(seed)  # dropout masks

    @staticmethod
    def framework_version() -> str:
        return mx.__version__

    def build(self, weights: dict[str, np.ndarray]) -> None:
        net = MODELS[self.task.name](self.task.dropout)
        self.layers = [block for block in net if isinstance(block, (nn.Dense, nn.Conv2D))]
        net.initialize(ctx=self.context)  # placeholder values, replaced by the spec's weights just below
        for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
            kernel = weights[f"{spec_layer.name}.kernel"]
            layer.weight.set_data(self._array(kernel.T if isinstance(layer, nn.Dense) else kernel))
            layer.bias.set_data(self._array(weights[f"{spec_layer.name}.bias"]))
        if self.mode == "compiled":
            net.hybridize(static_alloc=True, static_shape=True)
        elif self.mode == "native":
            net.hybridize()
        self.net = net
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(axis=-1, sparse_label=True, from_logits=False)
        spec = self.task.optimizer
        common = {"learning_rate": spec.learning_rate, "wd": spec.weight_decay, "clip_gradient": None,
                  "multi_precision": False, "rescale_grad": 1.0}  # step(batch_size) sets rescale_grad
        if spec.name == "adam":
            optimizer = _SpecAdam(beta1=spec.beta1, beta2=spec.beta2, epsilon=spec.epsilon,
                                          lazy_update=False, **common)
        elif spec.nesterov:
            optimizer = mx.optimizer.NAG(momentum=spec.momentum, **common)
        else:
            optimizer = mx.optimizer.SGD(momentum=spec.momentum, lazy_update=False, **common)
        self.trainer = gluon.Trainer(net.collect_params(), optimizer, kvstore=None)
        if self.precision == "fp16":
            amp.init_trainer(self.trainer)  # dynamic loss scaling

    def execution(self) -> dict[str, str]:
        runs_as = {"native": "cached graph (hybridize)",
                   "compiled": "cached graph, static memory and shape (hybridize static_alloc, static_shape)",
                   "eager": "op by op (imperative NDArray)"}[self.mode]
        precision = {"fp32": "float32, TF32 off", "tf32": "float32, cuDNN's TF32 (NVIDIA_TF32_OVERRIDE unset)",
                     "bf16": "amp.init bfloat16 (oneDNN), float32 parameters",
                     "fp16": "amp.init float16 + amp.scale_loss, float32 parameters"}[self.precision]
        return {"runs_as": runs_as, "optimizer_update": "outside the graph (imperative Trainer.step)",
                "precision": precision}

    def _array(self, array: np.ndarray) -> mx.nd.NDArray:
        return mx.nd.array(array, ctx=self.context, dtype=np.float32)

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> Any:
        data, target = self._array(images), self._array(labels)
        with autograd.record(train_mode=True):
            loss = self.loss_fn(self.net(data), target)  # one loss per sample
            if self.precision == "fp16":
                with amp.scale_loss(loss, self.trainer) as scaled:
                    autograd.backward(scaled)
        if self.precision != "fp16":
            loss.backward()  # sum of the per-sample gradients...
        self.trainer.step(len(images))  # ...times 1/batch_size: the gradient of the batch-mean loss
        return loss

    def loss_value(self, loss: Any) -> float:
        return float(loss.astype("float32", copy=False).asnumpy().mean())  # the batch mean, as the other adapters' losses

    def predict(self, images: np.ndarray) -> np.ndarray:
        # Outside autograd.record() gluon runs in inference mode: dropout off.
        return self.net(self._array(images)).astype("float32", copy=False).asnumpy()

    def weights(self) -> dict[str, np.ndarray]:
        weights = {}
        for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
            kernel = layer.weight.data(self.context).asnumpy()
            weights[f"{spec_layer.name}.kernel"] = kernel.T if isinstance(layer, nn.Dense) else kernel
            weights[f"{spec_layer.name}.bias"] = layer.bias.data(self.context).asnumpy()
        return weights

    def parameter_count(self) -> int:
        return sum(int(np.prod(parameter.shape)) for parameter in self.net.collect_params().values()
                   if parameter.grad_req != "null")

    def synchronize(self) -> None:
        mx.nd.waitall()

    def matmul_step(self, size: int) -> Callable[[], None]:
        a, b = (mx.nd.random.uniform(shape=(size, size), ctx=self.context) for _ in range(2))

        def step() -> None:
            mx.nd.dot(a, b).wait_to_read()
        return step

    def gpu_memory_peak_bytes(self) -> int | None:
        return None  # no allocator peak counter in MXNet: its GPU memory comes from NVML only

    def settings(self) -> dict[str, Any]:
        features = mx.runtime.Features()
        return {"engine_type": os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice (default)"),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset (one per core)"),
                "cpu_worker_threads": os.environ.get("MXNET_CPU_WORKER_NTHREADS", "1 (default)"),
                "mkldnn": features.is_enabled("MKLDNN"),
                "hybridize": {"native": {}, "compiled": {"static_alloc": True, "static_shape": True}}.get(self.mode),
                "kvstore": None}
