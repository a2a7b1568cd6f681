"""The common task spec: written once, framework-neutral, versioned.

Every adapter builds exactly these networks, loads exactly these initial weights and trains with exactly these
hyperparameters. The spec is plain data plus NumPy; it imports no framework, so the parent process and every
child can read it.

Canonical weight layout (adapters convert to their own):
- dense kernels are (in_features, out_features);
- conv kernels are OIHW: (out_channels, in_channels, kernel_h, kernel_w);
- the Flatten that feeds the first dense layer of the CNN flattens in channel-first order (C, H, W), so an
  adapter that computes in NHWC must permute the rows of that dense kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPEC_VERSION = "1"


@dataclass(frozen=True)
class Dense:
    name: str
    in_features: int
    out_features: int
    relu: bool

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        return {f"{self.name}.kernel": (self.in_features, self.out_features),
                f"{self.name}.bias": (self.out_features,)}

    def fans(self) -> tuple[int, int]:
        return self.in_features, self.out_features

    def forward_flops(self) -> int:
        return 2 * self.in_features * self.out_features


@dataclass(frozen=True)
class Conv:
    """A 3x3 'same'-padded, stride-1 convolution on `size` x `size` feature maps."""
    name: str
    in_channels: int
    out_channels: int
    relu: bool
    size: int
    kernel: int = 3

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        k = self.kernel
        return {f"{self.name}.kernel": (self.out_channels, self.in_channels, k, k),
                f"{self.name}.bias": (self.out_channels,)}

    def fans(self) -> tuple[int, int]:
        area = self.kernel * self.kernel
        return self.in_channels * area, self.out_channels * area

    def forward_flops(self) -> int:
        return 2 * self.in_channels * self.kernel * self.kernel * self.out_channels * self.size * self.size


@dataclass(frozen=True)
class Optimizer:
    """Every hyperparameter, written out: frameworks' defaults differ, so every adapter sets all of them."""
    name: str  # "adam" or "sgd"
    learning_rate: float
    beta1: float = 0.0
    beta2: float = 0.0
    epsilon: float = 0.0
    momentum: float = 0.0  # classic (heavy-ball) momentum: v = m*v + g; w -= lr*v
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    layers: tuple  # the parameterised layers, in order; the full layer sequence is in `architecture`
    architecture: tuple[str, ...]  # human-readable, for the README and the report
    dropout: tuple[float, ...]  # the dropout rates in order of appearance
    optimizer: Optimizer
    batch_size: int
    full_sizes: tuple[int, int]  # (train, test) samples of the real datasets; synthetic data matches them
    default_dataset: str
    datasets: tuple[str, ...]
    reference: str  # published accuracy to compare against
    accuracy_targets: dict[str, float] = field(default_factory=dict)  # per dataset, for time-to-accuracy

    @property
    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self.layers:
            shapes.update(layer.weight_shapes())
        return shapes

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.weight_shapes.values())

    @property
    def train_flops_per_sample(self) -> int:
        """Floating-point operations of one training sample: 2 per multiply-add of the dense and conv layers,
        times 3 for forward, gradient of the activations and gradient of the weights (the usual convention;
        activations, pooling, loss and optimizer are not counted, so utilisation is slightly understated)."""
        return 3 * sum(layer.forward_flops() for layer in self.layers)


def initial_weights(task: Task, seed: int) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels and zero biases, float32, drawn in layer order from one seeded generator.

    Fans follow the Keras convention (conv: channels x kernel area), the one most frameworks default to.
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for layer in task.layers:
        fan_in, fan_out = layer.fans()
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        kernel_shape, bias_shape = layer.weight_shapes().values()
        weights[f"{layer.name}.kernel"] = rng.uniform(-limit, limit, kernel_shape).astype(np.float32)
        weights[f"{layer.name}.bias"] = np.zeros(bias_shape, np.float32)
    return weights


MNIST_MLP = Task(
    name="mnist_mlp",
    description="MLP on 28x28 grey digits (TensorFlow's beginner MNIST network)",
    input_shape=(1, 28, 28),
    num_classes=10,
    layers=(Dense("dense1", 784, 128, relu=True), Dense("dense2", 128, 10, relu=False)),
    architecture=("Flatten 784", "Dense 128 + ReLU", "Dropout 0.2", "Dense 10 (logits)"),
    dropout=(0.2,),
    optimizer=Optimizer("adam", learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-7),
    batch_size=128,
    full_sizes=(60_000, 10_000),
    default_dataset="mnist",
    datasets=("mnist", "fashion-mnist", "synthetic"),
    reference="about 97.5-98 % test accuracy on MNIST after 5 epochs",
    accuracy_targets={"mnist": 0.97, "fashion-mnist": 0.85},
)

CIFAR_CNN = Task(
    name="cifar_cnn",
    description="4-conv CNN on 32x32 colour images (the published ten-framework 'Rosetta Stone' network)",
    input_shape=(3, 32, 32),
    num_classes=10,
    layers=(
        Conv("conv1", 3, 50, relu=True, size=32),
        Conv("conv2", 50, 50, relu=False, size=32),
        Conv("conv3", 50, 100, relu=True, size=16),
        Conv("conv4", 100, 100, relu=False, size=16),
        Dense("dense1", 100 * 8 * 8, 512, relu=True),
        Dense("dense2", 512, 10, relu=False),
    ),
    architecture=(
        "Conv 50 3x3 same + ReLU", "Conv 50 3x3 same", "MaxPool 2", "ReLU", "Dropout 0.25",
        "Conv 100 3x3 same + ReLU", "Conv 100 3x3 same", "MaxPool 2", "ReLU", "Dropout 0.25",
        "Flatten (C,H,W order) 6400", "Dense 512 + ReLU", "Dropout 0.5", "Dense 10 (logits)",
    ),
    dropout=(0.25, 0.25, 0.5),
    optimizer=Optimizer("sgd", learning_rate=0.01, momentum=0.9),
    batch_size=64,
    full_sizes=(50_000, 10_000),
    default_dataset="cifar10",
    datasets=("cifar10", "synthetic"),
    reference="76.4-79.0 % test accuracy after 10 epochs in ten frameworks (published comparison)",
    accuracy_targets={"cifar10": 0.70},
)

TASKS: dict[str, Task] = {task.name: task for task in (MNIST_MLP, CIFAR_CNN)}

#: The arithmetic a cell trains in. fp32: float32 throughout, TF32 off (the spec's reference); tf32: float32
#: storage, TensorFloat-32 tensor-core math for matmuls and convolutions (NVIDIA GPUs); bf16, fp16: each
#: framework's documented mixed-precision recipe (float32 weights and optimizer state, 16-bit compute; fp16 with
#: dynamic loss scaling). Each adapter writes its recipe down and records it (`execution()["precision"]`).
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


@dataclass(frozen=True)
class Profile:
    """How much of the spec a run does. `None` means the whole set."""
    name: str
    description: str
    epochs: dict[str, int]
    train_samples: dict[str, int | None]
    test_samples: dict[str, int | None]


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "seconds per cell: a few hundred samples, one epoch (for tests)",
                     epochs={"mnist_mlp": 1, "cifar_cnn": 1},
                     train_samples={"mnist_mlp": 512, "cifar_cnn": 256},
                     test_samples={"mnist_mlp": 256, "cifar_cnn": 128}),
    "quick": Profile("quick", "the default: every installed framework x both tasks in minutes on 2 CPU cores",
                     epochs={"mnist_mlp": 2, "cifar_cnn": 1},
                     train_samples={"mnist_mlp": None, "cifar_cnn": 5000},
                     test_samples={"mnist_mlp": None, "cifar_cnn": 2000}),
    "full": Profile("full", "the reference spec: 5 epochs MLP, 10 epochs CNN on the full sets (a GPU profile)",
                    epochs={"mnist_mlp": 5, "cifar_cnn": 10},
                    train_samples={"mnist_mlp": None, "cifar_cnn": None},
                    test_samples={"mnist_mlp": None, "cifar_cnn": None}),
}
