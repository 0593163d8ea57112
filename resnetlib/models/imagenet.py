"""ImageNet networks of Table 1: 18, 34, 50, 101 and 152 layers, residual or plain.

conv1 7x7/2 (64) -> 3x3/2 max pool -> conv2_x..conv5_x (``layer1``..``layer4``, 64..512 planes) ->
global average pool -> 1000-way fc. Module names follow torchvision's ``models/resnet.py`` so that
torchvision state dicts load into these nets with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck, Shortcut, check_shortcut, init_he, run_stage

#: Table 1: blocks per stage and block type for each depth.
CONFIGS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def default_shortcut(depth: int) -> Shortcut:
    """Table 2 compares 18/34 with option A; Sec. 3.3/4.1 use option B for the 50/101/152-layer nets."""
    return "A" if CONFIGS[depth][0] is BasicBlock else "B"


class ResNet(nn.Module):
    """A Table 1 network. ``residual=False`` gives the plain net of Fig. 3 (middle)."""

    def __init__(
        self,
        depth: int,
        residual: bool = True,
        shortcut: Shortcut | None = None,
        num_classes: int = 1000,
        in_channels: int = 3,
        stride_in_1x1: bool = True,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"ImageNet nets have depth {sorted(CONFIGS)} (Table 1), got {depth!r}")
        block, counts = CONFIGS[depth]
        self.depth, self.residual = depth, residual
        self.shortcut: Shortcut = check_shortcut(shortcut) if shortcut is not None else default_shortcut(depth)
        self.stride_in_1x1 = stride_in_1x1
        self.activation_checkpointing = activation_checkpointing
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_stage(block, 64, counts[0], 1)
        self.layer2 = self._make_stage(block, 128, counts[1], 2)
        self.layer3 = self._make_stage(block, 256, counts[2], 2)
        self.layer4 = self._make_stage(block, 512, counts[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_he(self)

    def _make_stage(self, block: type[nn.Module], planes: int, blocks: int, stride: int) -> nn.Sequential:
        extra = {"stride_in_1x1": self.stride_in_1x1} if block is Bottleneck else {}
        layers = []
        for i in range(blocks):
            layers.append(
                block(self.inplanes, planes, stride if i == 0 else 1, self.shortcut, self.residual, **extra)
            )
            self.inplanes = planes * block.expansion
        return nn.Sequential(*layers)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = run_stage(stage, x, self.activation_checkpointing)
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def response_layers(self) -> list[nn.Module]:
        out: list[nn.Module] = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                out.extend(block.response_layers())
        return out


def resnet(depth: int, **options) -> ResNet:
    return ResNet(depth, residual=True, **options)


def plain(depth: int, **options) -> ResNet:
    if options.get("shortcut") not in (None, "A"):
        raise ValueError("plain nets have no shortcuts; the 'shortcut' option applies to residual nets only")
    options.pop("shortcut", None)
    return ResNet(depth, residual=False, **options)
