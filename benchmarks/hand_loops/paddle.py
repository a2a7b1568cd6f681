"""mnist_mlp in PaddlePaddle's dynamic graph, as its tutorials write it: nn.Sequential, paddle.optimizer.Adam.

Per step: paddle.to_tensor on the batch and labels, forward, F.cross_entropy, backward, step, clear_grad. On CPU
every op has finished when it returns, so there is nothing to synchronise.
"""
from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from benchmarks.hand_loops import StepLoop


class PaddleLoop(StepLoop):
    def __init__(self, task, weights: dict[str, np.ndarray], seed: int):
        paddle.seed(seed)
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(task.dropout[0]),
                                   nn.Linear(128, 10))
        for name, layer in (("dense1", self.model[1]), ("dense2", self.model[4])):
            layer.weight.set_value(weights[f"{name}.kernel"])  # paddle's Linear is (in, out), as the spec
            layer.bias.set_value(weights[f"{name}.bias"])
        adam = task.optimizer
        self.optimizer = paddle.optimizer.Adam(learning_rate=adam.learning_rate, beta1=adam.beta1,
                                               beta2=adam.beta2, epsilon=adam.epsilon,
                                               parameters=self.model.parameters())
        self.model.train()

    def step(self, images: np.ndarray, labels: np.ndarray) -> paddle.Tensor:
        loss = nn.functional.cross_entropy(self.model(paddle.to_tensor(images)), paddle.to_tensor(labels))
        loss.backward()
        self.optimizer.step()
        self.optimizer.clear_grad()
        return loss


make = PaddleLoop
