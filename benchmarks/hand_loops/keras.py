"""mnist_mlp in Keras 3, as its users train it: Sequential, compile, `model.fit` (on the backend KERAS_BACKEND names).

Keras users do not write a step loop; they call fit on the whole array. So this loop puts the data in the
harness's batch order first (fit's shuffle=False keeps it) and times fit's steady state from the inside: a callback
reads the clock as batch `warmup` begins and then every `window` batches (one trailing extra batch, untimed,
closes the last window), so fit's per-call setup (data adapter, callbacks, the first steps' tracing) and its
end-of-epoch work stay out, as the harness keeps its warm-up steps out. Batch *begins* because a callback on
batch ends would change fit: Keras then stops dispatching those to a thread (JAX, torch) and reads the loss
every step. Stock Adam (eps on the uncorrected sqrt(v): a different eps, and on torch Keras's fused Adam),
compile's default jit_compile ("auto": Keras's native mode, what the harness's native mode runs), verbose=0.
"""
from __future__ import annotations

import time

import keras
import numpy as np

NAMES = ("dense1.kernel", "dense1.bias", "dense2.kernel", "dense2.bias")


class _WindowClock(keras.callbacks.Callback):
    """Clock reads, synchronised, as batch `first` begins and every `window` batches after it."""

    def __init__(self, first: int, window: int):
        super().__init__()
        self.first, self.window, self.times = first, window, []

    def on_train_batch_begin(self, batch, logs=None):
        if batch >= self.first and (batch - self.first) % self.window == 0:
            if keras.backend.backend() == "jax":  # asynchronous dispatch: wait for the previous step's state
                import jax
                state = self.model._jax_state  # fit keeps its state there between steps, in Keras's own containers,
                jax.block_until_ready([array for arrays in state.values() for array in arrays])  # opaque to JAX
            self.times.append(time.perf_counter())


class KerasFit:
    def __init__(self, task, weights: dict[str, np.ndarray], seed: int):
        keras.utils.set_random_seed(seed)
        channels, height, width = task.input_shape
        with keras.device("cpu"):
            self.model = keras.Sequential([
                keras.Input(shape=(height, width, channels)), keras.layers.Flatten(),
                keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(task.dropout[0]),
                keras.layers.Dense(10)])
            self.model.set_weights([weights[name] for name in NAMES])
            adam = task.optimizer
            self.model.compile(optimizer=keras.optimizers.Adam(adam.learning_rate, adam.beta1, adam.beta2,
                                                               adam.epsilon),
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def window_rates(self, images: np.ndarray, labels: np.ndarray, batches: list[np.ndarray], warmup: int,
                     window: int) -> list[float]:
        order = np.concatenate(batches + batches[-1:])
        clock = _WindowClock(first=warmup, window=window)
        with keras.device("cpu"):
            self.model.fit(images[order], labels[order], batch_size=len(batches[0]), epochs=1, shuffle=False,
                           verbose=0, callbacks=[clock])
        return [window * len(batches[0]) / (end - start) for start, end in zip(clock.times, clock.times[1:])]


make = KerasFit
