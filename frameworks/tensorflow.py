"""TensorFlow adapter: tf.Variable and tf.nn ops, tf.GradientTape, eager or tf.function(jit_compile=True).

Framework-specific choices, all written down here:
- No Keras: the networks are plain functions of tf.Variables built from tf.nn ops (conv2d, max_pool2d, relu,
  matmul, bias_add); the optimizers are written out below with TF ops. Keras is installed (a tensorflow-cpu
  dependency) but never imported by this adapter.
- Layout NHWC (TF's CPU conv2d and max_pool run only NHWC): the harness hands NHWC images. Conv kernels are
  converted from the spec's OIHW to TF's HWIO (transpose(2, 3, 1, 0)); dense kernels (in, out) are tf.matmul's
  layout as they are.
- Flatten: NHWC flattens in (H, W, C) order, the spec in (C, H, W); the rows of the CNN's first dense kernel are
  permuted in `build` (so the same weights compute the same function) and permuted back in `weights()`.
- Padding: conv2d padding="SAME" (3x3, stride 1: one pixel each side, torch's padding=1). Pooling: max_pool2d
  2x2, stride 2, "VALID" (torch's MaxPool2d(2)).
- Adam: torch.optim.Adam's update, eps added to sqrt(v_hat) after bias correction: m = b1*m + (1-b1)*g;
  v = b2*v + (1-b2)*g^2; w -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps), the last line in torch's operation
  order, its bias corrections computed as torch computes them, Python floats (float64), and passed to the step as
  float32 scalars (no per-step TF ops for them, and no retracing of the compiled step). Not Keras's Adam
  nor tf.raw_ops.ApplyAdam, which add eps to the uncorrected sqrt(v). Weight decay (0 in the spec) would be added
  to the gradient, as torch's.
- SGD momentum: v = m*v + g; w -= lr*v (torch's formula, dampening 0; Nesterov as torch's if the spec asks).
- Loss: tf.nn.sparse_softmax_cross_entropy_with_logits on logits with the harness's int64 labels, mean over the
  batch (tf.reduce_mean).
- Dropout: inverted dropout (kept units scaled by 1/(1-p)), as torch's, only when training (a Python flag: the
  predict function is traced without it); a rate of 0 skips the op. Every mode uses tf.nn.dropout with TF's
  stateful RNG seeded by tf.random.set_seed(seed), as users write it; under XLA it compiles to XLA's own RNG. No
  generator is hand-picked (the suite's tuning policy: a framework's defaults, for Keras's dropout as for this).
- Modes: "native" is the whole step (forward, gradients, optimizer update) in one tf.function without XLA, as
  TensorFlow's guides write a custom training loop for speed (and as Keras runs on a CPU-only TensorFlow);
  predict likewise. "eager" runs op by op in TF's eager executor (debugging). "compiled" is
  tf.function(jit_compile=True): the same step compiled by XLA. A graph is traced, and XLA compiles, once per
  input shape (the first steps are warm-up; a shorter last evaluation batch traces again).
- Threads: the intra-op pool is set to OMP_NUM_THREADS, which the harness sets to the CPUs this process may use
  (TF alone would count the affinity mask but not a cgroup CPU quota); the inter-op pool keeps TF's default;
  both recorded. oneDNN is TF's default on x86 (TF_ENABLE_ONEDNN_OPTS unset) and recorded.
- Precision: TensorFlow's mixed-precision guide is Keras's (dtype policies); this adapter has no Keras layers, so
  it does what a policy does, by hand: variables and optimizer state stay float32, and the forward pass casts
  them and the images to the compute type (bf16 or fp16) each step, the gradients flowing back through the casts
  to the float32 variables; logits are cast to float32 before the loss (as Keras's mixed guide asks of the last
  layer). fp16 adds dynamic loss scaling with the constants of Keras's LossScaleOptimizer (initial scale 2^15,
  x2 after 2000 finite steps, /2 and the update skipped on inf/NaN gradients; torch's and Paddle's GradScaler start
  at 2^16), inside the step's graph; Adam's step counter then lives in the graph too (float64, as torch's), so a
  skipped step does not advance it. tf32: tf.config.experimental.enable_tensor_float_32_execution(True); every other precision sets it
  False (TensorFlow's default on Ampere and newer is True).
- Device: "cuda" needs a GPU visible to TF (this CPU build has none), else the cell is unsupported. Eager ops on
  CPU run synchronously; `synchronize` still calls tf.test.experimental.sync_devices(), which waits for every
  device's queued work (on GPU it is a real wait).
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from frameworks.contract import Adapter
from frameworks.errors import Unsupported
from frameworks.spec import Conv, Dense


def _dense(x, params, name: str):
    return tf.nn.bias_add(tf.matmul(x, params[f"{name}.kernel"]), params[f"{name}.bias"])


def _conv(x, params, name: str):
    return tf.nn.bias_add(tf.nn.conv2d(x, params[f"{name}.kernel"], strides=1, padding="SAME"),
                          params[f"{name}.bias"])


def _pool(x):
    return tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")


def _mnist_mlp(params, x, dropout):
    x = tf.reshape(x, (-1, 784))
    x = tf.nn.relu(_dense(x, params, "dense1"))
    x = dropout(x, 0)
    return _dense(x, params, "dense2")


def _cifar_cnn(params, x, dropout):
    x = tf.nn.relu(_conv(x, params, "conv1"))
    x = _conv(x, params, "conv2")
    x = dropout(tf.nn.relu(_pool(x)), 0)
    x = tf.nn.relu(_conv(x, params, "conv3"))
    x = _conv(x, params, "conv4")
    x = dropout(tf.nn.relu(_pool(x)), 1)
    x = tf.reshape(x, (-1, 8 * 8 * 100))  # NHWC flattens in (H, W, C) order: dense1's rows are permuted in build
    x = tf.nn.relu(_dense(x, params, "dense1"))
    x = dropout(x, 2)
    return _dense(x, params, "dense2")


MODELS = {"mnist_mlp": _mnist_mlp, "cifar_cnn": _cifar_cnn}
COMPUTE_DTYPES = {"bf16": tf.bfloat16, "fp16": tf.float16}
#: dynamic loss scaling (fp16): Keras's LossScaleOptimizer defaults
INITIAL_LOSS_SCALE, LOSS_SCALE_GROWTH_STEPS = 2.0 ** 15, 2000


def _flattened_inputs(task) -> dict[str, tuple[int, int, int]]:
    """{dense layer name: (C, H, W) of the conv output it flattens}: the first dense layer after a conv."""
    for previous, layer in zip(task.layers, task.layers[1:]):
        if isinstance(previous, Conv) and isinstance(layer, Dense):
            side = int(round((layer.in_features // previous.out_channels) ** 0.5))
            return {layer.name: (previous.out_channels, side, side)}
    return {}


class TensorFlowAdapter(Adapter):
    data_layout = "NHWC"
    has_gpu_allocator_counter = True

    def __init__(self, task, device, mode, seed, precision="fp32"):
        super().__init__(task, device, mode, seed, precision)
        if device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise Unsupported(f"tensorflow {tf.__version__} sees no GPU (tensorflow-cpu is a CPU-only build)")
        tf.config.experimental.enable_tensor_float_32_execution(precision == "tf32")
        self.compute_dtype = COMPUTE_DTYPES.get(precision)
        self.tf_device = "/GPU:0" if device == "cuda" else "/CPU:0"
        if os.environ.get("OMP_NUM_THREADS"):
            tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["OMP_NUM_THREADS"]))
        tf.random.set_seed(seed)

    @staticmethod
    def framework_version() -> str:
        return tf.__version__

    def build(self, weights: dict[str, np.ndarray]) -> None:
        self.flattened = _flattened_inputs(self.task)
        self.params: dict[str, tf.Variable] = {}
        with tf.device(self.tf_device):
            for spec_layer in self.task.layers:
                kernel = weights[f"{spec_layer.name}.kernel"]
                if isinstance(spec_layer, Conv):
                    kernel = kernel.transpose(2, 3, 1, 0)  # OIHW -> HWIO
                elif spec_layer.name in self.flattened:
                    channels, height, width = self.flattened[spec_layer.name]  # rows (C, H, W) -> (H, W, C)
                    kernel = kernel.reshape(channels, height, width, -1).transpose(1, 2, 0, 3)
                    kernel = kernel.reshape(channels * height * width, -1)
                for name, value in ((f"{spec_layer.name}.kernel", kernel),
                                    (f"{spec_layer.name}.bias", weights[f"{spec_layer.name}.bias"])):
                    self.params[name] = tf.Variable(np.ascontiguousarray(value, np.float32), name=name)
            self.variables = list(self.params.values())
            self.slots = [[tf.Variable(tf.zeros_like(variable)) for variable in self.variables]
                          for _ in range(2 if self.task.optimizer.name == "adam" else 1)]
            if self.precision == "fp16":
                self.loss_scale = tf.Variable(INITIAL_LOSS_SCALE, dtype=tf.float32)
                self.finite_steps = tf.Variable(0, dtype=tf.int64)
                self.applied_steps = tf.Variable(0, dtype=tf.int64)  # Adam's t: skipped steps do not count
        self.model = MODELS[self.task.name]
        compile_ = {"eager": lambda f: f, "native": tf.function,
                    "compiled": lambda f: tf.function(f, jit_compile=True)}[self.mode]
        self._train = compile_(self._step)
        self.adam_t = 0  # Adam's t
        self._predict = compile_(self._forward)

    def _adam_scalars(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Adam's step size lr/(1-b1^t) and sqrt(1-b2^t) for the next step, in float64 as torch, as float32."""
        spec = self.task.optimizer
        self.adam_t += 1
        return (tf.constant(spec.learning_rate / (1.0 - spec.beta1 ** self.adam_t), tf.float32),
                tf.constant(math.sqrt(1.0 - spec.beta2 ** self.adam_t), tf.float32))

    def _adam(self, gradients, step_size: tf.Tensor, correction2_sqrt: tf.Tensor) -> None:
        spec = self.task.optimizer
        for variable, g, m, v in zip(self.variables, gradients, *self.slots):
            if spec.weight_decay:
                g = g + spec.weight_decay * variable
            m.assign(spec.beta1 * m + (1.0 - spec.beta1) * g)
            v.assign(spec.beta2 * v + (1.0 - spec.beta2) * tf.square(g))
            variable.assign_sub(step_size * m / (tf.sqrt(v) / correction2_sqrt + spec.epsilon))

    def _sgd(self, gradients) -> None:
        spec = self.task.optimizer
        for variable, g, velocity in zip(self.variables, gradients, *self.slots):
            if spec.weight_decay:
                g = g + spec.weight_decay * variable
            velocity.assign(spec.momentum * velocity + g)
            update = g + spec.momentum * velocity if spec.nesterov else velocity
            variable.assign_sub(spec.learning_rate * update)

    def _forward(self, images, training: bool = False):
        """Float32 logits; at bf16 or fp16 computed from the float32 variables and images cast to that type."""
        rates = self.task.dropout if training else (0.0,) * len(self.task.dropout)

        def dropout(x, index: int):
            return tf.nn.dropout(x, rates[index]) if rates[index] else x
        with tf.device(self.tf_device):
            params = self.params
            if self.compute_dtype is not None:
                params = {name: tf.cast(variable, self.compute_dtype) for name, variable in params.items()}
                images = tf.cast(images, self.compute_dtype)
            return tf.cast(self.model(params, images, dropout), tf.float32)

    def _update(self, gradients, *optimizer_scalars) -> None:
        if self.task.optimizer.name == "adam":
            self._adam(gradients, *optimizer_scalars)
        else:
            self._sgd(gradients)

    def _step(self, images, labels, *optimizer_scalars):
        with tf.device(self.tf_device):
            with tf.GradientTape() as tape:
                logits = self._forward(images, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
                scaled = loss * self.loss_scale if self.precision == "fp16" else loss
            gradients = tape.gradient(scaled, self.variables)
            if self.precision == "fp16":
                self._scaled_update(gradients)
            else:
                self._update(gradients, *optimizer_scalars)
            return loss

    def _scaled_update(self, scaled_gradients) -> None:
        """fp16's dynamic loss scaling: unscale; apply only finite gradients; then grow or shrink the scale."""
        gradients = [g / self.loss_scale for g in scaled_gradients]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])

        def apply():
            scalars = ()
            if self.task.optimizer.name == "adam":
                spec, t = self.task.optimizer, tf.cast(self.applied_steps + 1, tf.float64)
                scalars = (tf.cast(spec.learning_rate / (1.0 - spec.beta1 ** t), tf.float32),
                           tf.cast(tf.sqrt(1.0 - spec.beta2 ** t), tf.float32))
            self._update(gradients, *scalars)
            self.applied_steps.assign_add(1)
            grow = self.finite_steps + 1 >= LOSS_SCALE_GROWTH_STEPS
            self.loss_scale.assign(tf.where(grow, self.loss_scale * 2.0, self.loss_scale))
            self.finite_steps.assign(tf.where(grow, tf.constant(0, tf.int64), self.finite_steps + 1))
            return tf.constant(True)

        def skip():
            self.loss_scale.assign(self.loss_scale / 2.0)
            self.finite_steps.assign(0)
            return tf.constant(False)
        tf.cond(finite, apply, skip)

    def execution(self) -> dict[str, str]:
        runs_as = {"native": "graph (tf.function, no XLA)", "eager": "op by op (eager executor)",
                   "compiled": "XLA (tf.function jit_compile=True)"}[self.mode]
        precision = {"fp32": "float32, TF32 off", "tf32": "float32 variables, TF32 matmuls and convolutions",
                     "bf16": "variables float32, cast to bfloat16 for the forward pass",
                     "fp16": "variables float32, cast to float16; dynamic loss scaling in the step"}[self.precision]
        return {"runs_as": runs_as, "precision": precision,
                "optimizer_update": "op by op" if self.mode == "eager" else "inside the graph (one function a step)"}

    def _tensor(self, array: np.ndarray) -> tf.Tensor:
        with tf.device(self.tf_device):
            return tf.convert_to_tensor(array)

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> Any:
        scalars = self._adam_scalars() if self.task.optimizer.name == "adam" and self.precision != "fp16" else ()
        return self._train(self._tensor(images), self._tensor(labels), *scalars)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self._predict(self._tensor(images)).numpy()

    def weights(self) -> dict[str, np.ndarray]:
        weights = {}
        for spec_layer in self.task.layers:
            kernel = self.params[f"{spec_layer.name}.kernel"].numpy()
            if isinstance(spec_layer, Conv):
                kernel = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            elif spec_layer.name in self.flattened:
                channels, height, width = self.flattened[spec_layer.name]  # rows (H, W, C) -> (C, H, W)
                kernel = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3)
                kernel = kernel.reshape(channels * height * width, -1)
            weights[f"{spec_layer.name}.kernel"] = np.ascontiguousarray(kernel, np.float32)
            weights[f"{spec_layer.name}.bias"] = self.params[f"{spec_layer.name}.bias"].numpy()
        return weights

    def parameter_count(self) -> int:
        return sum(int(np.prod(variable.shape)) for variable in self.variables if variable.trainable)

    def synchronize(self) -> None:
        tf.test.experimental.sync_devices()

    def matmul_step(self, size: int) -> Callable[[], None]:
        with tf.device(self.tf_device):
            a, b = (tf.random.uniform((size, size), seed=seed) for seed in (1, 2))

        def step() -> None:
            with tf.device(self.tf_device):
                tf.matmul(a, b)
            self.synchronize()
        return step

    def gpu_memory_peak_bytes(self) -> int | None:
        if self.device != "cuda":
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])

    def settings(self) -> dict[str, Any]:
        return {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                "tf_function": self.mode != "eager",
                "jit_compile": self.mode == "compiled",
                "auto_jit": tf.config.optimizer.get_jit() or None,
                "dropout_rng": "tf.nn.dropout (stateful, TF's default generator)",
                "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 CPUs)"),
                "cuda_build": bool(tf.test.is_built_with_cuda())}
