"""mnist_mlp in raw TensorFlow, as the adapter writes it (no Keras): tf.Variables, GradientTape, a hand Adam.

The whole step in one tf.function (TensorFlow's native way to train a custom loop), as a user writes it from the
guide: the step's scalars passed as tensors so it traces once. The update is the spec's (Kingma & Ba: eps added
to sqrt(v_hat)), as the adapter's.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from benchmarks.hand_loops import StepLoop

NAMES = ("dense1.kernel", "dense1.bias", "dense2.kernel", "dense2.bias")


class TensorFlowLoop(StepLoop):
    def __init__(self, task, weights: dict[str, np.ndarray], seed: int):
        tf.random.set_seed(seed)
        self.params = [tf.Variable(weights[name]) for name in NAMES]
        self.moments = [(tf.Variable(tf.zeros_like(p)), tf.Variable(tf.zeros_like(p))) for p in self.params]
        self.adam, self.rate, self.t = task.optimizer, task.dropout[0], 0

    def step(self, images: np.ndarray, labels: np.ndarray) -> tf.Tensor:
        adam, self.t = self.adam, self.t + 1
        step_size = tf.constant(adam.learning_rate / (1 - adam.beta1 ** self.t), tf.float32)
        root_correction2 = tf.constant(math.sqrt(1 - adam.beta2 ** self.t), tf.float32)
        return self._step(tf.convert_to_tensor(images), tf.convert_to_tensor(labels), step_size, root_correction2)

    @tf.function
    def _step(self, images, labels, step_size, root_correction2):
        x, y = tf.reshape(images, (-1, 784)), labels
        w1, b1, w2, b2 = self.params
        with tf.GradientTape() as tape:
            hidden = tf.nn.dropout(tf.nn.relu(tf.matmul(x, w1) + b1), self.rate)
            logits = tf.matmul(hidden, w2) + b2
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        gradients = tape.gradient(loss, self.params)
        adam = self.adam
        for p, g, (m, v) in zip(self.params, gradients, self.moments):
            m.assign(adam.beta1 * m + (1 - adam.beta1) * g)
            v.assign(adam.beta2 * v + (1 - adam.beta2) * tf.square(g))
            p.assign_sub(step_size * m / (tf.sqrt(v) / root_correction2 + adam.epsilon))
        return loss

    def sync(self) -> None:
        tf.test.experimental.sync_devices()


make = TensorFlowLoop
