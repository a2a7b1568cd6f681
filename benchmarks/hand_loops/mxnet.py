"""mnist_mlp in MXNet Gluon, as its tutorials write it: HybridSequential, hybridize(), Trainer('adam').

Per step: nd.array on the batch and labels, forward and loss under autograd.record, backward,
trainer.step(batch_size). Stock Adam (eps on the uncorrected sqrt(v): a different eps, the same cost; the adapter's
subclass only sets one Python float per tensor and step). MXNet queues every op on its engine: sync() waits.
"""
from __future__ import annotations

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from benchmarks.hand_loops import StepLoop


class MXNetLoop(StepLoop):
    def __init__(self, task, weights: dict[str, np.ndarray], seed: int):
        mx.random.seed(seed)
        self.net = nn.HybridSequential()
        self.net.add(nn.Dense(128, in_units=784, activation="relu"), nn.Dropout(task.dropout[0]),
                     nn.Dense(10, in_units=128))  # Dense flattens its input by default
        self.net.initialize()
        self.net.hybridize()  # Gluon's native mode: forward and backward as one cached graph
        for name, layer in (("dense1", self.net[0]), ("dense2", self.net[2])):
            layer.weight.set_data(mx.nd.array(weights[f"{name}.kernel"].T))  # nn.Dense is (out, in)
            layer.bias.set_data(mx.nd.array(weights[f"{name}.bias"]))
        adam = task.optimizer
        self.trainer = gluon.Trainer(self.net.collect_params(), "adam", {
            "learning_rate": adam.learning_rate, "beta1": adam.beta1, "beta2": adam.beta2, "epsilon": adam.epsilon})
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def step(self, images: np.ndarray, labels: np.ndarray) -> mx.nd.NDArray:
        data, label = mx.nd.array(images), mx.nd.array(labels)
        with autograd.record():
            loss = self.loss_fn(self.net(data), label)
        loss.backward()
        self.trainer.step(len(images))
        return loss

    def sync(self) -> None:
        mx.nd.waitall()


make = MXNetLoop
