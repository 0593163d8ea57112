"""Building blocks of Sec. 3: residual (and plain) basic and bottleneck blocks, and the shortcuts.

Shortcut options (Sec. 3.3, Table 3):
  A  identity; where the dimensions grow, a parameter-free shortcut that subsamples with the stride and
     pads the new channels with zeros (``ShortcutA``).
  B  projection (1x1 conv + BN) only where the dimensions change, identity elsewhere.
  C  projection on every block.
The projection lives in the attribute ``downsample`` (torchvision's name), which is ``None`` for an
identity shortcut, so state dicts match torchvision's ``models/resnet.py``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

Shortcut = Literal["A", "B", "C"]
SHORTCUTS: tuple[str, ...] = ("A", "B", "C")


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ShortcutA(nn.Module):
    """Option A (Sec. 3.3): identity that subsamples by ``stride`` and zero-pads the extra channels.

    Parameter-free, as in the paper's CIFAR nets (Sec. 4.2: "the shortcuts are identity (option A)").
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"option A cannot reduce channels ({in_planes} -> {out_planes})")
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_planes - self.in_planes
        return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x

    def extra_repr(self) -> str:
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}, zero-padding"


def check_shortcut(option: str) -> Shortcut:
    if option not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {', '.join(SHORTCUTS)} (Sec. 3.3), got {option!r}")
    return option  # type: ignore[return-value]


def make_shortcut(option: Shortcut, in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    """The ``downsample`` module of a residual block for shortcut ``option``; None means identity."""
    check_shortcut(option)
    changes = stride != 1 or in_planes != out_planes
    if option == "C" or (option == "B" and changes):
        return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))
    if option == "A" and changes:
        return ShortcutA(in_planes, out_planes, stride)
    return None


class BasicBlock(nn.Module):
    """Two 3x3 convs (Fig. 2 left / Fig. 5 left); BN after each conv, before the ReLU (Sec. 3.4).

    With ``residual=False`` it is the block of the plain nets: the same layers, no shortcut.
    """

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, shortcut: Shortcut = "A", residual: bool = True
    ) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = make_shortcut(shortcut, inplanes, planes, stride) if residual else None
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def response_layers(self) -> list[nn.Module]:
        """BN outputs of the 3x3 convs: the responses of Fig. 7 (after BN, before ReLU and addition)."""
        return [self.bn1, self.bn2]


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 restore (Fig. 5 right), output ``4 * planes`` channels.

    ``stride_in_1x1=True`` puts the stride on the first 1x1 conv, as in the paper's released models;
    ``False`` puts it on the 3x3 (torchvision's "ResNet v1.5").
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        shortcut: Shortcut = "B",
        residual: bool = True,
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        self.residual = residual
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, planes, s1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, s3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        out_planes = planes * self.expansion
        self.downsample = make_shortcut(shortcut, inplanes, out_planes, stride) if residual else None
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)

    def response_layers(self) -> list[nn.Module]:
        return [self.bn2]


def run_stage(stage: nn.Sequential, x: torch.Tensor, activation_checkpointing: bool) -> torch.Tensor:
    """Run a stage block by block, recomputing each block's activations in backward if asked.

    Activation checkpointing trades about one extra forward pass for storing only block inputs, which
    is what lets ResNet-1202 train at batch 128 on a 16 GB card. BN running statistics are updated in
    the recomputation too (a known property of checkpointing with BN; the effect is a slightly faster
    moving average and does not touch the gradients).
    """
    for block in stage:
        if activation_checkpointing and torch.is_grad_enabled():
            x = checkpoint(block, x, use_reentrant=False)
        else:
            x = block(x)
    return x


def init_he(model: nn.Module) -> None:
    """He initialization (Sec. 3.4, ref. [13]): N(0, 2/n) for conv weights, n = k*k*out_channels.

    The fan-out form is the one fb.resnet.torch and torchvision use; BN starts at gamma=1, beta=0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
