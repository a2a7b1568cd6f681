"""mnist_mlp in plain PyTorch, as its tutorials write it: nn.Sequential, F.cross_entropy, torch.optim.Adam.

Per step: torch.from_numpy on the batch (no copy on CPU), zero_grad, forward, backward, step. On CPU every op has
finished when it returns, so there is nothing to synchronise.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmarks.hand_loops import StepLoop


class TorchLoop(StepLoop):
    def __init__(self, task, weights: dict[str, np.ndarray], seed: int):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(task.dropout[0]),
                                   nn.Linear(128, 10))
        with torch.no_grad():
            for name, layer in (("dense1", self.model[1]), ("dense2", self.model[4])):
                layer.weight.copy_(torch.from_numpy(weights[f"{name}.kernel"].T))  # nn.Linear is (out, in)
                layer.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
        adam = task.optimizer
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=adam.learning_rate,
                                          betas=(adam.beta1, adam.beta2), eps=adam.epsilon)
        self.model.train()

    def step(self, images: np.ndarray, labels: np.ndarray) -> torch.Tensor:
        self.optimizer.zero_grad()
        loss = nn.functional.cross_entropy(self.model(torch.from_numpy(images)), torch.from_numpy(labels))
        loss.backward()
        self.optimizer.step()
        return loss


make = TorchLoop
