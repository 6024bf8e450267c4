#!/usr/bin/python3
"""PyTorch's training step on ZeroFL's catalogue models: the peer the `torch` perf suite times.

The models are built exactly as ZeroFL builds them (src/Engine/Models), with the same parameter
names, so that `--count-params` can be compared tensor by tensor. A step is what ZeroFL's Trainer
does: zero the gradients, forward, softmax cross-entropy, backward, SGD (lr 0.01, momentum 0.9,
weight decay 5e-4), on one fixed batch of random inputs in [-1, 1) and random labels.

Sparsity > 0 trains the layers ZeroFL makes sparse by default (SwatRules, the paper's rule) as
SWAT's reference code does: masked dense tensors, top-K recomputed every step (top-K period 1).
The forward uses the weight masked to its K largest magnitudes; the backward takes dx from the
masked weight and dw from the layer input masked to its K largest magnitudes, which is the only
copy of the input kept. K = ceil(density * n) over the whole tensor, density = 1 - sparsity.

usage:
  torch_step.py MODEL --batch B [--sparsity S] [--warmup W] [--steps N]   one JSON line of step times
  torch_step.py MODEL --count-params                                     one JSON line of tensor shapes
MODEL is resnet18 (3x32x32, 10 classes), femnist-cnn (1x28x28, 62) or cnn (1x28x28, 10);
--channels, --size and --classes override the shape.
"""

import argparse
import json
import math
import statistics
import time
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

THREADS = 2

# Catalogue name -> (channels, size, classes) of the shape the perf suite uses.
DEFAULT_SHAPES = {
    "resnet18": (3, 32, 10),
    "femnist-cnn": (1, 28, 62),
    "cnn": (1, 28, 10),
}


def keep_top_k(tensor, density):
    """The tensor with all but its K = ceil(density * n) largest magnitudes zeroed.

    As SWAT's reference code: the K-th largest |x| is the threshold and every entry at least that
    large is kept (ties at the threshold, rare for floats, keep a few more)."""
    magnitudes = tensor.abs()
    n = magnitudes.numel()
    k = min(n, math.ceil(density * n))
    threshold = magnitudes.view(-1).kthvalue(n - k + 1).values
    return tensor * (magnitudes >= threshold)


class SwatConv2dFunction(torch.autograd.Function):
    """Conv2d under SWAT: forward with the top-K weight; dx from the top-K weight, dw from the top-K input."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, density):
        kept_weight = keep_top_k(weight, density)
        kept_input = keep_top_k(x, density)
        ctx.save_for_backward(kept_input, kept_weight)
        ctx.geometry = (x.shape, stride, padding, bias is not None)
        return F.conv2d(x, kept_weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, dy):
        kept_input, kept_weight = ctx.saved_tensors
        input_shape, stride, padding, has_bias = ctx.geometry
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.nn.grad.conv2d_input(input_shape, kept_weight, dy, stride, padding)
        dw = torch.nn.grad.conv2d_weight(kept_input, kept_weight.shape, dy, stride, padding)
        db = dy.sum((0, 2, 3)) if has_bias else None
        return dx, dw, db, None, None, None


class SwatLinearFunction(torch.autograd.Function):
    """Linear under SWAT, x [batch, inputs]: forward with the top-K weight; dx from it, dw from the top-K input."""

    @staticmethod
    def forward(ctx, x, weight, bias, density):
        kept_weight = keep_top_k(weight, density)
        kept_input = keep_top_k(x, density)
        ctx.save_for_backward(kept_input, kept_weight)
        ctx.has_bias = bias is not None
        return F.linear(x, kept_weight, bias)

    @staticmethod
    def backward(ctx, dy):
        kept_input, kept_weight = ctx.saved_tensors
        dx = dy @ kept_weight if ctx.needs_input_grad[0] else None
        dw = dy.t() @ kept_input
        db = dy.sum(0) if ctx.has_bias else None
        return dx, dw, db, None


class Conv2d(nn.Conv2d):
    """nn.Conv2d (square kernel) that trains under SWAT once `density` < 1."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.density = 1.0

    def forward(self, x):
        if self.density >= 1:
            return super().forward(x)
        return SwatConv2dFunction.apply(x, self.weight, self.bias, self.stride, self.padding, self.density)


class Linear(nn.Linear):
    """nn.Linear that flattens its input (as ZeroFL's Linear does) and trains under SWAT once `density` < 1."""

    def __init__(self, inputs, outputs):
        super().__init__(inputs, outputs)
        self.density = 1.0

    def forward(self, x):
        x = x.flatten(1)
        if self.density >= 1:
            return super().forward(x)
        return SwatLinearFunction.apply(x, self.weight, self.bias, self.density)


class BasicBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn plus identity or 1x1-conv-bn shortcut, then relu."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                Conv2d(in_channels, out_channels, 1, stride, 0, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3x3 stem (stride 1, no max-pool), 4 stages of 2 basic blocks, global average pool, fc."""

    def __init__(self, in_channels, classes):
        super().__init__()
        self.conv1 = Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        channels = 64
        for stage, width in enumerate([64, 128, 256, 512]):
            stride = 1 if stage == 0 else 2
            setattr(self, f"layer{stage + 1}", nn.Sequential(
                BasicBlock(channels, width, stride), BasicBlock(width, width, 1)))
            channels = width
        self.fc = Linear(512, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1))

    def sparse_layers(self):
        """SWAT's layers: every 3x3 convolution but the stem (the 1x1 shortcuts stay dense)."""
        return [conv for layer in (self.layer1, self.layer2, self.layer3, self.layer4)
                for block in layer for conv in (block.conv1, block.conv2)]


class FemnistCnn(nn.Module):
    """LEAF's FEMNIST CNN: conv5x5(32, pad 2)-relu-pool, conv5x5(64, pad 2)-relu-pool, fc(2048)-relu, fc(classes)."""

    def __init__(self, in_channels, size, classes):
        super().__init__()
        self.net = nn.Sequential(
            Conv2d(in_channels, 32, 5, 1, 2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            Conv2d(32, 64, 5, 1, 2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            Linear(64 * (size // 4) ** 2, 2048), nn.ReLU(inplace=True),
            Linear(2048, classes))

    def forward(self, x):
        return self.net(x)

    def sparse_layers(self):
        """SWAT's layers: both convolutions and the first linear layer; the classifier stays dense."""
        return [self.net[0], self.net[3], self.net[6]]


class SmallCnn(nn.Module):
    """ZeroFL's small CNN: conv3x3(32)-relu-pool, conv3x3(64)-relu-pool, fc(128)-relu, fc(classes)."""

    def __init__(self, in_channels, size, classes):
        super().__init__()
        self.features = nn.Sequential(
            Conv2d(in_channels, 32, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            Conv2d(32, 64, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            Linear(64 * (size // 4) ** 2, 128), nn.ReLU(inplace=True), Linear(128, classes))

    def forward(self, x):
        return self.classifier(self.features(x))

    def sparse_layers(self):
        """ZeroFL's rule for this model: the second convolution and the hidden linear layer."""
        return [self.features[3], self.classifier[0]]


def build(model, channels, size, classes):
    if model == "resnet18":
        return ResNet18(channels, classes)
    if model == "femnist-cnn":
        return FemnistCnn(channels, size, classes)
    if model == "cnn":
        return SmallCnn(channels, size, classes)
    raise SystemExit(f"unknown model '{model}' (expected one of: {', '.join(DEFAULT_SHAPES)})")


def count_params(network):
    """Trainable parameters and running statistics (num_batches_tracked, which ZeroFL lacks, left out)."""
    trainable = {name: list(p.shape) for name, p in network.named_parameters()}
    statistics_ = {name: list(b.shape) for name, b in network.named_buffers()
                   if not name.endswith("num_batches_tracked")}
    return {
        "trainable": sum(p.numel() for p in network.parameters()),
        "running_statistics": sum(math.prod(shape) for shape in statistics_.values()),
        "tensors": {**trainable, **statistics_},
    }


def time_steps(network, batch, channels, size, classes, warmup, steps):
    """Seconds of each of `steps` training steps after `warmup` untimed ones."""
    inputs = torch.rand(batch, channels, size, size) * 2 - 1
    labels = torch.randint(classes, (batch,))
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    network.train()
    seconds = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(network(inputs), labels)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(DEFAULT_SHAPES))
    parser.add_argument("--batch", type=int, default=32)
    # A Fraction, read exactly: 1 - 0.9 is 1/10, not 0.09999999999999998 (which would move K).
    parser.add_argument("--sparsity", type=Fraction, default=Fraction(0), help="0 = dense; SWAT keeps the top 1 - S")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--size", type=int)
    parser.add_argument("--classes", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count-params", action="store_true", help="print the parameter shapes and counts, time nothing")
    args = parser.parse_args()

    default_channels, default_size, default_classes = DEFAULT_SHAPES[args.model]
    channels = args.channels or default_channels
    size = args.size or default_size
    classes = args.classes or default_classes
    torch.set_num_threads(THREADS)
    torch.manual_seed(args.seed)
    network = build(args.model, channels, size, classes)
    shape = {"model": args.model, "channels": channels, "size": size, "classes": classes}
    if args.count_params:
        print(json.dumps({**shape, **count_params(network)}))
        return

    sparsity = args.sparsity
    if not 0 <= sparsity < 1 or args.batch < 1 or args.warmup < 0 or args.steps < 1:
        raise SystemExit("need 0 <= sparsity < 1, batch >= 1, warmup >= 0, steps >= 1")
    for layer in network.sparse_layers() if sparsity > 0 else []:
        layer.density = 1 - sparsity
    seconds = time_steps(network, args.batch, channels, size, classes, args.warmup, args.steps)
    print(json.dumps({
        **shape,
        "batch": args.batch,
        "sparsity": float(sparsity),
        "mode": "swat_masked" if sparsity > 0 else "dense",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "warmup": args.warmup,
        "median_s": statistics.median(seconds),
        "step_s": seconds,
        "cpu_s": time.process_time(),  # this process's CPU time (all threads) since it started
    }))


if __name__ == "__main__":
    main()
