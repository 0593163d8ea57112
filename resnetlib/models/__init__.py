"""Every network of the paper, by name (a timm-style registry).

>>> from resnetlib import models
>>> net = models.build("cifar_resnet110")           # Sec. 4.2, option A shortcuts
>>> net = models.build("resnet34", shortcut="C")    # Table 3
>>> models.names()                                  # every registered name

Any CIFAR depth 6n+2 is available as ``cifar_resnet<depth>`` / ``cifar_plain<depth>`` even when it is
not one of the paper's listed names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

import torchvision
from torch import nn

from .blocks import SHORTCUTS, BasicBlock, Bottleneck, ShortcutA
from .cifar import PAPER_DEPTHS, PLAIN_DEPTHS, CifarResNet, blocks_per_stage, cifar_plain, cifar_resnet
from .imagenet import CONFIGS, ResNet, plain, resnet

__all__ = [
    "build",
    "names",
    "register",
    "family",
    "SHORTCUTS",
    "BasicBlock",
    "Bottleneck",
    "ShortcutA",
    "CifarResNet",
    "ResNet",
    "cifar_resnet",
    "cifar_plain",
    "resnet",
    "plain",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_FAMILY: dict[str, str] = {}


def register(name: str, constructor: Callable[..., nn.Module], family: str) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = constructor
    _FAMILY[name] = family


def _vgg(depth: int, num_classes: int = 1000) -> nn.Module:
    """VGG-16/19 (ref. [41]) from torchvision: the baseline of Fig. 3 and Table 3, randomly initialised."""
    return getattr(torchvision.models, f"vgg{depth}")(weights=None, num_classes=num_classes)


for _d in PAPER_DEPTHS:
    register(f"cifar_resnet{_d}", partial(cifar_resnet, _d), "cifar")
for _d in PLAIN_DEPTHS:
    register(f"cifar_plain{_d}", partial(cifar_plain, _d), "cifar")
for _d in CONFIGS:
    register(f"resnet{_d}", partial(resnet, _d), "imagenet")
    register(f"plain{_d}", partial(plain, _d), "imagenet")
for _d in (16, 19):
    register(f"vgg{_d}", partial(_vgg, _d), "vgg")

_CIFAR_PATTERN = re.compile(r"^cifar_(resnet|plain)(\d+)$")


def names() -> list[str]:
    """All registered model names, sorted."""
    return sorted(_REGISTRY)


def family(name: str) -> str:
    """'cifar', 'imagenet' or 'vgg': which input size and data the net was designed for."""
    if name in _FAMILY:
        return _FAMILY[name]
    match = _CIFAR_PATTERN.match(name)
    if match:
        blocks_per_stage(int(match.group(2)))  # a 6n+2 depth, checked at configuration time (Sec. 4.2)
        return "cifar"
    raise ValueError(_unknown(name))


def _unknown(name: str) -> str:
    return (
        f"unknown model {name!r}; known models: {', '.join(names())} "
        "(and cifar_resnet<6n+2> / cifar_plain<6n+2> for any such depth)"
    )


def build(name: str, **options) -> nn.Module:
    """Construct the network ``name`` with ``options`` (shortcut, num_classes, in_channels, ...).

    Raises ValueError for an unknown name (listing the known ones), an impossible depth or a bad option.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    constructor = _REGISTRY.get(name)
    if constructor is None:
        match = _CIFAR_PATTERN.match(name)
        if not match:
            raise ValueError(_unknown(name))
        kind, depth = match.groups()
        constructor = partial(cifar_resnet if kind == "resnet" else cifar_plain, int(depth))
    try:
        return constructor(**options)
    except TypeError as exc:
        raise ValueError(f"bad option for model {name!r}: {exc}") from None
