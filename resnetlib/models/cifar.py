"""CIFAR-10 networks of Sec. 4.2: 6n+2 layers on 32x32 inputs.

conv3x3(16) -> 3 stages of 2n layers with 16, 32, 64 filters on 32x32, 16x16, 8x8 maps (downsampling
by stride-2 convs) -> global average pooling -> fc. Shortcuts are identity (option A) by default, so
the residual and plain nets have exactly the same parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BasicBlock, Shortcut, check_shortcut, init_he, run_stage

PAPER_DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110, 1202)
PLAIN_DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110)


def blocks_per_stage(depth: int) -> int:
    """n for a 6n+2-layer net (Sec. 4.2); raises ValueError for depths the design cannot have."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"CIFAR nets have 6n+2 layers (Sec. 4.2), e.g. {', '.join(map(str, PAPER_DEPTHS))}; got {depth!r}"
        )
    return (depth - 2) // 6


class CifarResNet(nn.Module):
    """The 6n+2-layer CIFAR-10 net, residual or plain (Sec. 4.2)."""

    def __init__(
        self,
        depth: int,
        residual: bool = True,
        shortcut: Shortcut = "A",
        num_classes: int = 10,
        in_channels: int = 3,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        n = blocks_per_stage(depth)
        check_shortcut(shortcut)
        self.depth, self.residual, self.shortcut = depth, residual, shortcut
        self.activation_checkpointing = activation_checkpointing
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = 16
        self.layer1 = self._make_stage(16, n, 1)
        self.layer2 = self._make_stage(32, n, 2)
        self.layer3 = self._make_stage(64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        init_he(self)

    def _make_stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            layers.append(
                BasicBlock(self.inplanes, planes, stride if i == 0 else 1, self.shortcut, self.residual)
            )
            self.inplanes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for stage in (self.layer1, self.layer2, self.layer3):
            x = run_stage(stage, x, self.activation_checkpointing)
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def response_layers(self) -> list[nn.Module]:
        """The BN layers after every 3x3 conv, in depth order (Fig. 7)."""
        out: list[nn.Module] = [self.bn1]
        for stage in (self.layer1, self.layer2, self.layer3):
            for block in stage:
                out.extend(block.response_layers())
        return out


def cifar_resnet(depth: int, **options) -> CifarResNet:
    """A residual CIFAR net of ``depth`` = 6n+2 layers (Sec. 4.2), option A shortcuts by default."""
    return CifarResNet(depth, residual=True, **options)


def cifar_plain(depth: int, **options) -> CifarResNet:
    """The plain counterpart: the same stack without shortcuts (Sec. 4.2, Fig. 6 left)."""
    if "shortcut" in options and options["shortcut"] != "A":
        raise ValueError("plain nets have no shortcuts; the 'shortcut' option applies to residual nets only")
    options.pop("shortcut", None)
    return CifarResNet(depth, residual=False, **options)
