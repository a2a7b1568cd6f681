"""Keras 3 adapter: keras.Sequential, model.compile, model.fit, on the backend KERAS_BACKEND names.

One adapter for three frameworks: the harness sets KERAS_BACKEND (tensorflow | jax | torch) before this module
imports keras, so the same code runs on each backend. Framework-specific choices, all written down here:
- One adapter, three environments: keras-tensorflow, keras-jax and keras-torch each install only their backend, so
  a keras[jax] or keras[torch] cell never loads TensorFlow (keras.utils.set_random_seed imports it whenever it is
  installed) and its memory and startup are its backend's alone; each record lists the frameworks it loaded.
- Modes are Keras's own `model.compile` switches, as users set them:
  - "native" = jit_compile="auto", Keras's default and what its guides use. Keras resolves it per backend
    (Trainer._resolve_auto_jit_compile): TensorFlow: False on a machine where TensorFlow sees only CPUs (a
    tf.function graph without XLA), True where it sees a GPU (XLA); JAX: True (jax.jit); torch: False (eager).
    The record's `execution` says what it resolved to.
  - "eager" = run_eagerly=True: every backend op by op, Keras's debugging mode.
  - "compiled" = jit_compile=True. TensorFlow: tf.function(jit_compile=True), i.e. XLA. JAX: jax.jit (XLA) with
    the state donated. torch: torch.compile of Keras's train step (inductor; needs a C++ compiler on CPU); Dynamo
    breaks it into several graphs (Keras converts the NumPy batch and opens name scopes inside the step).
- Training: `model.fit`, one call per epoch, as Keras users train: the harness hands every adapter the epoch
  gathered in its order before the clock (frameworks.loop); fit(shuffle=False, batch_size=the spec's) cuts the same
  contiguous batches (on TensorFlow, Keras's own array adapter wraps the arrays in a tf.data pipeline, as for any
  Keras user who passes NumPy arrays), and a callback tells the harness's clock as each batch begins
  (frameworks.clock.StepClock: the windows are timed as for every framework). The epoch's training loss is fit's own
  (the mean of the batch losses, the harness's definition). fit's per-call setup (data adapter, callbacks)
  runs before the first batch begins, so it is outside the timed training time (tens of ms an epoch). Why not
  train_on_batch, one call per harness batch: it resets the loss tracker and converts the loss to a Python
  float every call, 20 % slower than fit on the MLP (benchmarks/overhead.py) — a cost Keras users do not pay.
  `train_step` (parity's K steps) still uses train_on_batch.
- JAX: fit keeps the training state in `model._jax_state` between steps and writes it back to the variables at
  the end of the epoch, so `synchronize` waits on that state while fit runs (keras/src/backend/jax/trainer.py).
- Inference: `model.predict_on_batch` (the predict function predict() runs, under the same jit_compile), which
  returns NumPy.
- Layout NHWC (Keras's channels_last default). Conv kernels are HWIO: the spec's OIHW is transposed (2, 3, 1, 0).
  Dense kernels are (in, out), as in the spec. Keras's Flatten of an NHWC map orders features (H, W, C), the
  spec's (C, H, W): the rows of the dense kernel after a Flatten are permuted on load and back in `weights()`
  (the identity for the MLP, whose single channel makes both orders equal).
- Adam: every argument set (beta_1, beta_2, epsilon=1e-7, amsgrad=False). Stock Keras adds epsilon to sqrt(v)
  and folds the bias corrections into the step size ("epsilon hat"), while the spec (Kingma & Ba, Algorithm 1;
  torch, Paddle) adds it to sqrt(v_hat): stock Keras behaves as the spec with epsilon / sqrt(1 - beta2^t), 31.6x
  larger at step 1, which moves the MLP's weights by ~9e-2 against the others in `bench parity`. `_SpecAdam`
  overrides Keras's own `update_step` hook with Keras's own op sequence and epsilon * sqrt(1 - beta2^t) in place
  of epsilon, which is Algorithm 1 exactly (same state, same variables, the cost of stock Adam: the first version,
  with m_hat and v_hat as tensors, cost keras[tensorflow] ~5 % of its native MLP speed, benchmarks/overhead.py). On torch, Keras swaps its exact Adam class for a fused torch._foreach version that a subclass would
  not get (the generic per-variable update cost keras[torch] 25 % of its MLP speed, benchmarks/overhead.py), so
  there `_TorchSpecAdam` subclasses that fused class (keras.src.backend.torch.optimizers.torch_adam, an internal
  module) and writes Algorithm 1 with the same _foreach ops, in the same order.
- SGD momentum: Keras keeps v = m*v - lr*g; w += v, which equals torch's v = m*v + g; w -= lr*v for a constant
  learning rate (the spec's). nesterov set from the spec.
- weight_decay: None when the spec's is 0 (Keras would otherwise still run the op); Keras's weight decay is
  decoupled (AdamW-style), not torch's L2 term, so a non-zero spec value would not mean the same thing.
- Loss: SparseCategoricalCrossentropy(from_logits=True), mean over the batch; no metrics compiled.
- Seeds: keras.utils.set_random_seed(seed) before the layers exist (Python, NumPy, the backend, and the seed
  generators the Dropout layers draw at construction).
- Device: every Keras call runs inside keras.device("cpu" | "gpu:0"), because the torch backend otherwise puts
  everything on CUDA whenever CUDA exists; "cuda" needs the backend to see a GPU, else Unsupported.
- GPU on torch: torch.backends.cudnn.benchmark = True and TF32 off, as in the PyTorch adapter (TensorFlow and JAX
  autotune convolutions by default; TF32 is off for them through the harness's NVIDIA_TF32_OVERRIDE=0).
- Precision: Keras's mixed-precision guide: bf16 and fp16 set the global dtype policy "mixed_bfloat16" /
  "mixed_float16" before the layers exist (variables float32, computations in 16 bits); for mixed_float16,
  model.compile wraps the optimizer in a LossScaleOptimizer by itself (auto_scale_loss=True, Keras's default). The
  logits stay 16-bit and the loss casts them to float32 before the softmax (Loss converts y_pred to its own
  float32 dtype), which is what the guide's float32 output layer is for; predict returns them as float32.
  tf32: TensorFlow's enable_tensor_float_32_execution, JAX's jax_default_matmul_precision "tensorfloat32", torch's
  allow_tf32 switches; every other precision turns them off ("highest" for JAX: its default on GPUs lets XLA
  use TF32, which NVIDIA_TF32_OVERRIDE=0 does not reach in XLA's own kernels).
- Threads: torch reads OMP_NUM_THREADS (the harness sets it to the CPUs this process may use); on TensorFlow the
  intra-op pool is set to it, as in the TensorFlow adapter; XLA:CPU under JAX has no thread setting and sizes its
  pool from the CPUs in the affinity mask. Recorded in `settings()`.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import keras
import numpy as np

from frameworks.contract import Adapter
from frameworks.errors import Unsupported

BACKEND = keras.backend.backend()


class _ClockCallback(keras.callbacks.Callback):
    """Tells the harness's clock as each of fit's batches begins, and closes its last window as the epoch ends.
    Only batch *begins*: a callback on batch ends would change fit (Keras then stops dispatching those to a thread
    on JAX and torch, and reads the loss every step)."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.step_begins()

    def on_epoch_end(self, epoch, logs=None):
        self.clock.finish()


class _SpecAdam(keras.optimizers.Adam):
    """Adam as the spec defines it (epsilon added to sqrt(v_hat)); see the module docstring. Keras's own update_step,
    op for op, with epsilon * sqrt(1 - beta2^t) in place of epsilon: Algorithm 1 multiplied through by
    sqrt(1 - beta2^t), so the spec costs what stock Adam costs (one scalar product more)."""

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        local_step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), local_step)
        sqrt_correction2 = ops.sqrt(1 - ops.power(ops.cast(self.beta_2, variable.dtype), local_step))
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        alpha = lr * sqrt_correction2 / (1 - beta_1_power)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha),
                                             ops.add(ops.sqrt(v), self.epsilon * sqrt_correction2)))


if BACKEND == "torch":
    import torch
    from keras.src.backend.torch.optimizers.torch_adam import Adam as _KerasTorchAdam

    class _TorchSpecAdam(_KerasTorchAdam):
        """_SpecAdam's update in the fused form (torch._foreach over all variables) Keras gives its own Adam on
        torch, so the spec's Adam costs keras[torch] what stock Adam costs it. Stock Keras's op sequence, with
        epsilon * sqrt(1 - beta2^t) added to sqrt(v) instead of epsilon: exactly Algorithm 1's m_hat / (sqrt(v_hat)
        + epsilon) multiplied through by sqrt(1 - beta2^t), at no extra pass over the weights."""

        def _parallel_update_step(self, grads, variables, learning_rate):
            ops = keras.ops
            indices = [self._get_variable_index(variable) for variable in variables]
            values = [variable.value for variable in variables]
            m_list = [self._momentums[index].value for index in indices]
            v_list = [self._velocities[index].value for index in indices]
            dtype = values[0].dtype
            step = ops.cast(self.iterations + 1, dtype)
            correction1 = 1 - ops.power(ops.cast(self.beta_1, dtype), step)
            sqrt_correction2 = ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step))
            alpha = ops.cast(learning_rate, dtype) * sqrt_correction2 / correction1
            torch._foreach_mul_(m_list, self.beta_1)
            torch._foreach_add_(m_list, grads, alpha=1 - self.beta_1)
            torch._foreach_mul_(v_list, self.beta_2)
            torch._foreach_add_(v_list, torch._foreach_mul(grads, grads), alpha=1 - self.beta_2)
            denominators = torch._foreach_add(torch._foreach_sqrt(v_list), self.epsilon * sqrt_correction2)
            torch._foreach_add_(values, torch._foreach_div(torch._foreach_mul(m_list, alpha), denominators),
                                alpha=-1)


def _mnist_mlp(input_shape: tuple[int, int, int], dropout: tuple[float, ...]) -> keras.Sequential:
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(dropout[0]),
        keras.layers.Dense(10),
    ])


def _cifar_cnn(input_shape: tuple[int, int, int], dropout: tuple[float, ...]) -> keras.Sequential:
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(50, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(50, 3, padding="same"),
        keras.layers.MaxPooling2D(2), keras.layers.ReLU(), keras.layers.Dropout(dropout[0]),
        keras.layers.Conv2D(100, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(100, 3, padding="same"),
        keras.layers.MaxPooling2D(2), keras.layers.ReLU(), keras.layers.Dropout(dropout[1]),
        keras.layers.Flatten(),  # NHWC flattens in (H, W, C) order: the next kernel's rows are permuted
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(dropout[2]),
        keras.layers.Dense(10),
    ])


MODELS = {"mnist_mlp": _mnist_mlp, "cifar_cnn": _cifar_cnn}


def _chw_to_hwc_rows(kernel: np.ndarray, shape_hwc: tuple[int, int, int]) -> np.ndarray:
    """Dense kernel rows from the spec's (C, H, W) flatten order to Keras's (H, W, C)."""
    height, width, channels = shape_hwc
    return kernel.reshape(channels, height, width, -1).transpose(1, 2, 0, 3).reshape(kernel.shape)


def _hwc_to_chw_rows(kernel: np.ndarray, shape_hwc: tuple[int, int, int]) -> np.ndarray:
    height, width, channels = shape_hwc
    return kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)


def _gpu_visible() -> bool:
    if BACKEND == "tensorflow":
        import tensorflow as tf
        return bool(tf.config.list_physical_devices("GPU"))
    if BACKEND == "jax":
        import jax
        return any(device.platform == "gpu" for device in jax.devices())
    import torch
    return torch.cuda.is_available()


#: the global dtype policy per precision (tf32 is float32 storage with TF32 math, set per backend)
DTYPE_POLICIES = {"fp32": "float32", "tf32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


class KerasAdapter(Adapter):
    data_layout = "NHWC"
    has_gpu_allocator_counter = True

    def __init__(self, task, device, mode, seed, precision="fp32"):
        super().__init__(task, device, mode, seed, precision)
        if device == "cuda" and not _gpu_visible():
            raise Unsupported(f"keras {keras.__version__} on {BACKEND} sees no GPU")
        self.keras_device = "gpu:0" if device == "cuda" else "cpu"  # not "cpu:0": torch would copy
        tf32 = precision == "tf32"
        if BACKEND == "torch" and device == "cuda":  # the suite's one autotuning policy, as the PyTorch adapter
            import torch
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        if BACKEND == "tensorflow":
            import tensorflow as tf
            tf.config.experimental.enable_tensor_float_32_execution(tf32)
            if os.environ.get("OMP_NUM_THREADS"):
                tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["OMP_NUM_THREADS"]))
        if BACKEND == "jax":
            import jax
            jax.config.update("jax_default_matmul_precision", "tensorfloat32" if tf32 else "highest")
        keras.config.set_dtype_policy(DTYPE_POLICIES[precision])
        self.fitting = False
        keras.utils.set_random_seed(seed)  # dropout masks: Dropout layers seed their generators at construction

    @staticmethod
    def framework_version() -> str:
        if BACKEND == "tensorflow":
            import tensorflow as backend_module
        elif BACKEND == "jax":
            import jax as backend_module
        else:
            import torch as backend_module
        return f"{keras.__version__} ({BACKEND} {backend_module.__version__})"

    def build(self, weights: dict[str, np.ndarray]) -> None:
        channels, height, width = self.task.input_shape
        with keras.device(self.keras_device):
            model = MODELS[self.task.name]((height, width, channels), self.task.dropout)
            self.layers = [layer for layer in model.layers
                           if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))]
            # the (H, W, C) shape each Flatten sees, keyed by the dense layer right after it
            self.flatten_shapes = {id(after): tuple(layer.input.shape[1:])
                                   for layer, after in zip(model.layers, model.layers[1:])
                                   if isinstance(layer, keras.layers.Flatten)}
            for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
                kernel = weights[f"{spec_layer.name}.kernel"]
                if isinstance(layer, keras.layers.Conv2D):
                    kernel = kernel.transpose(2, 3, 1, 0)  # OIHW -> HWIO
                elif id(layer) in self.flatten_shapes:
                    kernel = _chw_to_hwc_rows(kernel, self.flatten_shapes[id(layer)])
                layer.set_weights([kernel, weights[f"{spec_layer.name}.bias"]])
            spec = self.task.optimizer
            if spec.name == "adam":
                spec_adam = _TorchSpecAdam if BACKEND == "torch" else _SpecAdam
                optimizer = spec_adam(name="adam", learning_rate=spec.learning_rate, beta_1=spec.beta1,
                                      beta_2=spec.beta2, epsilon=spec.epsilon, amsgrad=False,
                                      weight_decay=spec.weight_decay or None)
            else:
                optimizer = keras.optimizers.SGD(learning_rate=spec.learning_rate, momentum=spec.momentum,
                                                 nesterov=spec.nesterov, weight_decay=spec.weight_decay or None)
            model.compile(optimizer=optimizer,
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile={"native": "auto", "eager": False, "compiled": True}[self.mode],
                          run_eagerly=self.mode == "eager")
        if self.mode == "compiled" and not model.jit_compile:  # Keras turns it off for layers without XLA support
            raise Unsupported(f"keras {keras.__version__} on {BACKEND} refused jit_compile for {self.task.name}")
        self.model = model

    def execution(self) -> dict[str, str]:
        jit, eager = self.model.jit_compile, self.model.run_eagerly
        precision = f"dtype policy {self.model.dtype_policy.name}" + (
            ", LossScaleOptimizer" if isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer) else "") + (
            ", TF32 math" if self.precision == "tf32" else "")
        if eager or (BACKEND != "tensorflow" and not jit):
            return {"runs_as": "op by op" + (" (run_eagerly)" if eager else " (eager)"), "precision": precision,
                    "optimizer_update": "op by op" + (" (fused torch._foreach)" if BACKEND == "torch" else "")}
        runs_as = {"tensorflow": "XLA (tf.function jit_compile)" if jit else "graph (tf.function, no XLA)",
                   "jax": "jax.jit (XLA)", "torch": "inductor (torch.compile of the train step)"}[BACKEND]
        return {"runs_as": runs_as, "optimizer_update": "inside the compiled train step", "precision": precision}

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, batch_size: int, clock) -> float:
        """One `model.fit` epoch over the epoch's samples, in their order; fit's batch-begin hook runs the clock."""
        self.fitting = True
        try:
            with keras.device(self.keras_device):
                history = self.model.fit(images, labels, batch_size=batch_size, epochs=1,
                                         shuffle=False, verbose=0, callbacks=[_ClockCallback(clock)])
        finally:
            self.fitting = False
        return float(history.history["loss"][-1])

    def train_step(self, images: np.ndarray, labels: np.ndarray) -> Any:
        with keras.device(self.keras_device):
            return self.model.train_on_batch(images, labels, return_dict=False)  # a Python float

    def predict(self, images: np.ndarray) -> np.ndarray:
        with keras.device(self.keras_device):
            return np.asarray(self.model.predict_on_batch(images), np.float32)

    def weights(self) -> dict[str, np.ndarray]:
        weights = {}
        for spec_layer, layer in zip(self.task.layers, self.layers, strict=True):
            kernel, bias = (np.asarray(value, np.float32) for value in layer.get_weights())
            if isinstance(layer, keras.layers.Conv2D):
                kernel = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            elif id(layer) in self.flatten_shapes:
                kernel = _hwc_to_chw_rows(kernel, self.flatten_shapes[id(layer)])
            weights[f"{spec_layer.name}.kernel"] = np.ascontiguousarray(kernel)
            weights[f"{spec_layer.name}.bias"] = bias
        return weights

    def parameter_count(self) -> int:
        return int(sum(np.prod(variable.shape) for variable in self.model.trainable_weights))

    def synchronize(self) -> None:
        if BACKEND == "jax":  # JAX dispatches asynchronously, even on CPU: the loss can be ready before the update
            import jax
            if self.fitting and getattr(self.model, "_jax_state", None):  # inside fit, the state lives there
                # Keras tracks the dict and its lists as its own containers, which JAX does not see into (it would
                # return at once, the steps still queued): wait on the arrays themselves.
                jax.block_until_ready([array for arrays in self.model._jax_state.values() for array in arrays])
            else:
                state = self.model.variables + self.model.optimizer.variables
                jax.block_until_ready([variable.value for variable in state])
        elif self.device == "cuda" and BACKEND == "tensorflow":
            import tensorflow as tf
            tf.test.experimental.sync_devices()
        elif self.device == "cuda":
            import torch
            torch.cuda.synchronize()
        # TensorFlow and torch on CPU: a training step or predict_on_batch call returns after its work is done

    def matmul_step(self, size: int) -> Callable[[], None]:
        with keras.device(self.keras_device):
            a, b = (keras.random.uniform((size, size), seed=seed) for seed in (1, 2))

        def step() -> None:
            with keras.device(self.keras_device):
                product = keras.ops.matmul(a, b)
            if BACKEND == "jax":
                product.block_until_ready()
            else:
                self.synchronize()
        return step

    def gpu_memory_peak_bytes(self) -> int | None:
        if self.device != "cuda":
            return None
        if BACKEND == "tensorflow":
            import tensorflow as tf
            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        if BACKEND == "jax":
            import jax
            stats = jax.devices("gpu")[0].memory_stats() or {}
            return int(stats["peak_bytes_in_use"]) if "peak_bytes_in_use" in stats else None
        import torch
        return int(torch.cuda.max_memory_allocated())

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"backend": BACKEND, "jit_compile": self.model.jit_compile,
                                    "run_eagerly": self.model.run_eagerly, "floatx": keras.config.floatx()}
        if BACKEND == "tensorflow":
            import tensorflow as tf
            settings.update(intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                            inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads())
        elif BACKEND == "jax":
            import jax
            settings.update(jax_platform=jax.default_backend(), xla_flags=os.environ.get("XLA_FLAGS"))
        else:
            import torch
            settings.update(intra_op_threads=torch.get_num_threads(),
                            compile_backend="inductor" if self.model.jit_compile else None)
        return settings
