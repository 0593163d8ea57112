"""Faster R-CNN on our ResNets with the paper's C4 design (Sec. 4.3, appendix A), and a VGG baseline.

Built on torchvision's ``FasterRCNN`` (its RPN, RoIAlign, samplers and losses); only the backbone, the
RoI head and the predictor are ours:

ResNet ("C4", Table 8's design):
    backbone  conv1 .. conv4_x (``conv1, bn1, relu, maxpool, layer1..layer3``), stride 16, shared by the
              RPN and the detector; ``out_channels = 256 * expansion``.
    RoI pool  ``MultiScaleRoIAlign(["0"], 14, 2)``: 14x14 features per RoI.
    head      conv5_x (``layer4``; its first block has stride 2, so 14x14 -> 7x7) + global average pool.
    predictor ``FastRCNNPredictor(512 * expansion, num_classes)``: the cls and box-regression fcs.

VGG-16 baseline (ref. [32]'s Faster R-CNN): conv1_1 .. conv5_3 (torchvision ``features`` minus its last
max-pool, stride 16), 7x7 RoIAlign, fc6/fc7 head. ``vgg_small`` is a VGG-style net of about the same
backbone cost as ResNet-18's C4 trunk, but with a cheap fc head (about 1/6 of the ResNet-18 detector's
multiply-adds per image at the CPU profiles, where conv5_x per RoI dominates).

``vgg_c4``: the equal-cost VGG-style baseline of the CPU profiles. ``vgg_small``'s trunk (stride 16) on the
image, RoIAlign at the ResNet's size (``roi_output_size``), then per RoI a plain conv stage as wide and
deep as ResNet-18's conv5_x (2x2 max-pool, four 3x3 convs of 512 channels), global average pooling and
fc6/fc7 (1024). Its whole detector does 1.01-1.02x the multiply-adds of the ResNet-18 C4 detector per
image at the smoke and cpu settings, training and test (``count_macs``): the comparison the paper
means, a better representation at comparable cost, not a bigger net.

BN: the paper computes BN statistics on ImageNet and keeps them fixed while fine-tuning
(``batchnorm="frozen"``: every ``BatchNorm2d`` becomes ``torchvision.ops.FrozenBatchNorm2d``). Training
from scratch (no ImageNet checkpoint, as in the small profiles) has no statistics worth freezing;
``batchnorm="train"`` keeps ordinary BN there, and then ``vgg_small`` gets BN after each conv too, so
both backbones share one normalisation policy (VGG-16 stays as published, without BN).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign

from .. import models
from .context import ContextHead, WithContext, add_global_context
from .multiscale import MultiScaleTrainingTransform

__all__ = [
    "BACKBONES",
    "C4_HEADS",
    "PAPER_ANCHOR_SIZES",
    "PAPER_ASPECT_RATIOS",
    "RESNETS",
    "VGGS",
    "BackboneStart",
    "FrozenBatchNorm2d",
    "ResNetC4Backbone",
    "ResNetC5Head",
    "VGGBackbone",
    "VGGConvHead",
    "VGGHead",
    "backbone_macs",
    "build_detector",
    "count_macs",
    "freeze_batchnorm",
    "load_classification_checkpoint",
    "normalisation",
    "resnet_parts",
    "single_level_anchors",
    "vgg_small_features",
]

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
VGGS = ("vgg16", "vgg_small", "vgg_c4")
BACKBONES = RESNETS + VGGS
#: The C4 design (Sec. 4.3, appendix A): a conv stage runs on each RoI, which ``roi_output_size`` sizes.
C4_HEADS = (*RESNETS, "vgg_c4")

#: Faster R-CNN's anchors (ref. [32]), used by the paper: 3 scales x 3 aspect ratios, ~600 px images.
PAPER_ANCHOR_SIZES = (128, 256, 512)
PAPER_ASPECT_RATIOS = (0.5, 1.0, 2.0)

#: The torchvision/ImageNet per-channel normalisation (what torchvision's checkpoints expect).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BatchNormMode = Literal["frozen", "train"]


# --------------------------------------------------------------------------------------------- BN


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` inside ``module`` by a ``FrozenBatchNorm2d`` with its statistics.

    The running mean/var and the affine weight/bias are copied (a BN without affine parameters gets
    weight 1, bias 0); the frozen layer is a fixed per-channel affine map with no trainable parameters.
    Works in place on children and returns ``module`` (or the replacement if ``module`` itself is a BN).
    """
    if isinstance(module, nn.BatchNorm2d):
        return _frozen_copy(module)
    for name, child in module.named_children():
        new = freeze_batchnorm(child)
        if new is not child:
            setattr(module, name, new)
    return module


def _frozen_copy(bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
    frozen = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
    with torch.no_grad():
        if bn.affine:
            frozen.weight.copy_(bn.weight.detach())
            frozen.bias.copy_(bn.bias.detach())
        if bn.track_running_stats and bn.running_mean is not None:
            frozen.running_mean.copy_(bn.running_mean)
            frozen.running_var.copy_(bn.running_var)
    return frozen.to(bn.weight.device if bn.affine else frozen.weight.device)


# ---------------------------------------------------------------------------------- ResNet C4 / C5


class ResNetC4Backbone(nn.Module):
    """conv1 .. conv4_x of a Table 1 ResNet: the stride-16 trunk shared by the RPN and the detector."""

    stride = 16

    def __init__(self, net: models.ResNet) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        self.out_channels = _stage_channels(net.layer3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


class ResNetC5Head(nn.Module):
    """conv5_x (``layer4``, first block stride 2: 14x14 RoI features -> 7x7) + global average pool."""

    def __init__(self, net: models.ResNet) -> None:
        super().__init__()
        self.layer4 = net.layer4
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_channels = _stage_channels(net.layer4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.layer4(x)), 1)


def _stage_channels(stage: nn.Sequential) -> int:
    last = stage[-1]
    conv = last.conv3 if hasattr(last, "conv3") else last.conv2
    return int(conv.out_channels)


# ------------------------------------------------------------------------------------------- VGG


class VGGBackbone(nn.Module):
    """A VGG conv trunk ending at stride 16 (for VGG-16: conv5_3, the last max-pool removed)."""

    stride = 16

    def __init__(self, features: nn.Sequential, out_channels: int) -> None:
        super().__init__()
        self.features = features
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class VGGHead(nn.Module):
    """Flatten the 7x7 RoI features, then fc6/fc7 (with ReLU and dropout as in VGG)."""

    def __init__(self, fcs: nn.Sequential, out_channels: int) -> None:
        super().__init__()
        self.fcs = fcs
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fcs(torch.flatten(x, 1))


class VGGConvHead(nn.Module):
    """``vgg_c4``'s RoI head: 2x2 max-pool, a plain 3x3 conv stage, global average pool, fc6/fc7.

    The VGG-style counterpart of ``ResNetC5Head`` (max-pool instead of the stride-2 conv, no shortcuts),
    so that the baseline spends as many multiply-adds per RoI as conv5_x does.
    """

    def __init__(self, convs: nn.Sequential, fcs: nn.Sequential, out_channels: int) -> None:
        super().__init__()
        self.convs, self.fcs = convs, fcs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fcs(torch.flatten(self.avgpool(self.convs(x)), 1))


#: vgg_small: (channels, 3x3 convs) per stage; a 2x2 max-pool follows each stage but the last, so the
#: output is at stride 16 like conv5_3. About 1.4 GMACs per 224x224 image, like ResNet-18's conv1..conv4_x.
VGG_SMALL_STAGES: tuple[tuple[int, int], ...] = ((32, 1), (64, 1), (128, 1), (256, 2), (256, 2))
VGG_SMALL_FC = 1024
#: vgg_c4's conv stage per RoI, (channels, 3x3 convs): ResNet-18's conv5_x width and depth. With it the
#: whole detector does 1.01x (smoke: 64 px, 32 train / 30 test RoIs) to 1.02x (cpu: 96 px, 32 / 50 RoIs)
#: the multiply-adds of the ResNet-18 C4 detector per image (tests/detection/test_model.py checks >= 1).
VGG_C4_HEAD_STAGE: tuple[int, int] = (512, 4)


def vgg_small_features(in_channels: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The conv trunk of ``vgg_small`` (stride 16, 256 channels)."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for i, (c_out, n) in enumerate(VGG_SMALL_STAGES):
        layers.extend(_conv_stage(c_in, c_out, n, batch_norm))
        c_in = c_out
        if i < len(VGG_SMALL_STAGES) - 1:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def _conv_stage(c_in: int, c_out: int, n: int, batch_norm: bool) -> list[nn.Module]:
    """``n`` 3x3 convs (+BN) + ReLU, VGG's building block, with torchvision's VGG initialisation."""
    layers: list[nn.Module] = []
    for _ in range(n):
        conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        layers.extend([conv, nn.BatchNorm2d(c_out)] if batch_norm else [conv])
        layers.append(nn.ReLU(inplace=True))
        c_in = c_out
    return layers


def vgg_c4_head(in_channels: int, batch_norm: bool = False) -> VGGConvHead:
    """``vgg_c4``'s RoI head on ``in_channels``-wide RoI features (see ``VGGConvHead``)."""
    width, depth = VGG_C4_HEAD_STAGE
    convs = nn.Sequential(nn.MaxPool2d(2, 2), *_conv_stage(in_channels, width, depth, batch_norm))
    return VGGConvHead(convs, _vgg_small_head(width), out_channels=VGG_SMALL_FC)


def _vgg_small_head(in_features: int) -> nn.Sequential:
    fcs = nn.Sequential(
        nn.Linear(in_features, VGG_SMALL_FC),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(VGG_SMALL_FC, VGG_SMALL_FC),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
    )
    for m in fcs:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return fcs


# ------------------------------------------------------------------------------ checkpoint loading


def _read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained checkpoint not found: {path}. Pass the path of a resnetlib classification "
            "checkpoint (torch.save of a state dict, or of a dict with the state dict under 'model') or of "
            "a torchvision state dict file; nothing is downloaded at run time."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the path and what was expected
        raise ValueError(f"cannot read pretrained checkpoint {path}: {exc}") from None
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} holds no state dict: expected a dict of tensors, or a dict with one under 'model'"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        for prefix in ("module.", "_orig_mod."):  # DistributedDataParallel / torch.compile wrappers
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def load_classification_checkpoint(
    net: nn.Module, path: str | Path, *, skip_prefixes: Sequence[str] = (), first_conv: str = ""
) -> dict[str, Any]:
    """Load a classification state dict into ``net`` (strict=False) and say exactly what did not load.

    Keys under ``skip_prefixes`` (the 1000-way classifier, which detection replaces) are dropped. A
    3-channel first conv (``first_conv`` names its weight) loaded into a 1-channel net is summed over
    its input channels. Raises ValueError when no key matches or a shape differs; warns, listing them,
    when backbone/head keys are missing from the checkpoint. Returns a report dict.
    """
    state = _read_state_dict(path)
    state = {k: v for k, v in state.items() if not any(k.startswith(p) for p in skip_prefixes)}
    own = net.state_dict()
    _sum_colour_channels(state, own, first_conv)
    _check_fits(state, own, path)
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not any(k.startswith(p) for p in skip_prefixes)]
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in result.unexpected_keys if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        _warn_partial(path, missing, unexpected)
    return {
        "path": str(path),
        "loaded": len(state) - len(unexpected),
        "missing": missing,
        "unexpected": unexpected,
    }


def _sum_colour_channels(
    state: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor], first_conv: str
) -> None:
    """A 3-channel first conv loaded into a 1-channel net: sum its weights over the input channels."""
    if first_conv and first_conv in state and first_conv in own:
        w, target = state[first_conv], own[first_conv]
        if w.dim() == 4 and w.shape[1] != target.shape[1] and target.shape[1] == 1:
            state[first_conv] = w.sum(dim=1, keepdim=True)


def _check_fits(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], path: str | Path) -> None:
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(
            f"pretrained checkpoint {path} does not fit this backbone ({len(mismatched)} shape mismatches):\n  "
            + "\n  ".join(mismatched[:10])
        )
    if not any(k in own for k in state):
        raise ValueError(
            f"pretrained checkpoint {path}: none of its {len(state)} keys (e.g. {sorted(state)[:3]}) names a "
            f"parameter of this network (e.g. {sorted(own)[:3]}); is it a checkpoint of another architecture?"
        )


def _warn_partial(path: str | Path, missing: list[str], unexpected: list[str]) -> None:
    warnings.warn(
        f"pretrained checkpoint {path}: {len(missing)} backbone/head keys missing "
        f"{missing[:8]}{' ...' if len(missing) > 8 else ''}, {len(unexpected)} unexpected keys "
        f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}; those layers keep their random init",
        stacklevel=4,
    )


# ---------------------------------------------------------------------------------------- builder


def normalisation(
    in_channels: int, image_mean: Sequence[float] | None, image_std: Sequence[float] | None
) -> tuple[list[float], list[float]]:
    """The input normalisation: the given mean/std (one per channel), else ImageNet's (averaged for 1 channel)."""
    if image_mean is None:
        image_mean = IMAGENET_MEAN if in_channels == 3 else [sum(IMAGENET_MEAN) / 3] * in_channels
    if image_std is None:
        image_std = IMAGENET_STD if in_channels == 3 else [sum(IMAGENET_STD) / 3] * in_channels
    mean, std = [float(v) for v in image_mean], [float(v) for v in image_std]
    if len(mean) != in_channels or len(std) != in_channels:
        raise ValueError(
            f"image_mean/image_std need one value per input channel ({in_channels}), "
            f"got {len(mean)} and {len(std)}"
        )
    return mean, std


def _freeze_params(*modules: nn.Module) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)


@dataclass(frozen=True)
class BackboneStart:
    """How a backbone starts: input channels, classification checkpoint, BN policy, frozen stages."""

    in_channels: int
    pretrained: str | None
    batchnorm: BatchNormMode
    freeze_at: int


#: trunk, RoI pool, head, the width of its output, checkpoint report
Parts = tuple[nn.Module, nn.Module, nn.Module, int, dict | None]


def resnet_parts(
    name: str, start: BackboneStart, roi_output_size: int, stride_in_1x1: bool, shortcut: str | None
) -> Parts:
    """A Table 1 ResNet split for the C4 design: conv1..conv4_x trunk, RoIAlign, conv5_x head."""
    options: dict[str, Any] = {"num_classes": 1000, "in_channels": start.in_channels}
    if name in ("resnet50", "resnet101", "resnet152"):
        options["stride_in_1x1"] = stride_in_1x1
    if shortcut is not None:
        options["shortcut"] = shortcut
    net = models.build(name, **options)
    report = None
    if start.pretrained:
        report = load_classification_checkpoint(
            net, start.pretrained, skip_prefixes=("fc.",), first_conv="conv1.weight"
        )
    if start.batchnorm == "frozen":
        freeze_batchnorm(net)
    backbone, head = ResNetC4Backbone(net), ResNetC5Head(net)
    if start.freeze_at >= 1:
        _freeze_params(backbone.conv1, backbone.bn1)
    if start.freeze_at >= 2:
        _freeze_params(backbone.layer1)
    pool = MultiScaleRoIAlign(["0"], output_size=roi_output_size, sampling_ratio=2)
    return backbone, pool, head, head.out_channels, report


def _vgg_parts(name: str, start: BackboneStart, roi_output_size: int) -> Parts:
    if name == "vgg16":
        features, head, out_channels, report = _vgg16(start.in_channels, start.pretrained, roi_output_size)
    else:
        features, head, out_channels, report = _vgg_small(start, roi_output_size, conv_head=name == "vgg_c4")
    _freeze_vgg_stages(features, start.freeze_at)
    backbone = VGGBackbone(features, out_channels)
    pool = MultiScaleRoIAlign(["0"], output_size=roi_output_size, sampling_ratio=2)
    return backbone, pool, head, head.out_channels, report


def _vgg16(in_channels: int, pretrained: str | None, roi_output_size: int):
    """conv1_1 .. conv5_3 (pool5 dropped: stride 16) and fc6/fc7 of torchvision's VGG-16."""
    net = torchvision.models.vgg16(weights=None)
    if in_channels != 3:
        net.features[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
    report = None
    if pretrained:
        report = load_classification_checkpoint(
            net, pretrained, skip_prefixes=("classifier.6.",), first_conv="features.0.weight"
        )
    # fc6/fc7 as published expect 7x7x512; another RoI size would not fit fc6.
    if roi_output_size != 7:
        raise ValueError(f"vgg16's fc6 takes 7x7 RoI features; got roi_output_size={roi_output_size}")
    return net.features[:-1], VGGHead(net.classifier[:-1], out_channels=4096), 512, report


def _vgg_small(start: BackboneStart, roi_output_size: int, conv_head: bool):
    """``vgg_small`` (fc head on the RoI) or, with ``conv_head``, ``vgg_c4`` (conv stage per RoI)."""
    batch_norm = start.batchnorm == "train"
    features = vgg_small_features(start.in_channels, batch_norm=batch_norm)
    out_channels = VGG_SMALL_STAGES[-1][0]
    if conv_head:
        head: nn.Module = vgg_c4_head(out_channels, batch_norm)
    else:
        head = VGGHead(_vgg_small_head(out_channels * roi_output_size**2), out_channels=VGG_SMALL_FC)
    report = None
    if start.pretrained:
        wrapper = nn.Module()
        wrapper.features, wrapper.head = features, head
        report = load_classification_checkpoint(
            wrapper, start.pretrained, skip_prefixes=("fc.",), first_conv="features.0.weight"
        )
    return features, head, out_channels, report


def _freeze_vgg_stages(features: nn.Sequential, freeze_at: int) -> None:
    """Fix the first ``freeze_at`` conv stages (ref. [32] keeps VGG-16's conv1_x and conv2_x fixed)."""
    stage = 0
    for m in features:
        if stage >= freeze_at:
            break
        _freeze_params(m)
        if isinstance(m, nn.MaxPool2d):
            stage += 1


def build_detector(
    backbone: str,
    num_classes: int,
    *,
    min_size: int = 600,
    max_size: int = 1000,
    anchor_sizes: Sequence[float] = PAPER_ANCHOR_SIZES,
    aspect_ratios: Sequence[float] = PAPER_ASPECT_RATIOS,
    pretrained: str | None = None,
    in_channels: int = 3,
    batchnorm: BatchNormMode = "frozen",
    freeze_at: int = 0,
    roi_output_size: int | None = None,
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    stride_in_1x1: bool = True,
    shortcut: str | None = None,
    global_context: bool = False,
    train_min_sizes: Sequence[int] = (),
    **faster_rcnn_options: Any,
) -> FasterRCNN:
    """A torchvision ``FasterRCNN`` with a ResNet (C4) or VGG backbone (one of ``BACKBONES``).

    ``num_classes`` counts the background (index 0). ``min_size``, ``max_size``: the image sides after
    resizing (paper: 600 / 1000); ``anchor_sizes`` x ``aspect_ratios`` on the one stride-16 map (paper:
    3 x 3). ``pretrained``: a classification checkpoint (resnetlib or torchvision state dict) loaded before
    anything is frozen; None = random init. ``in_channels``: 1 for the Fashion-MNIST scenes (mean/std get
    that many values). ``batchnorm``: "frozen" (the paper's fixed statistics) or "train" (from scratch).
    ``freeze_at``: 1 fixes conv1, 2 also conv2_x (the released models, ref. [32]'s VGG-16).
    ``roi_output_size``: default 14 for the C4 designs (ResNets, vgg_c4), 7 for vgg16/vgg_small.
    ``stride_in_1x1``, ``shortcut``: ResNet
    options of ``models.build`` (torchvision's ResNet-18/34 checkpoints need shortcut "B").
    ``global_context``: the whole image's pooled feature joined to each RoI's (appendix A, ``context.py``).
    ``train_min_sizes``: multi-scale training, the shorter side drawn per training image from these
    (``multiscale.py``); the test side stays ``min_size``.
    ``faster_rcnn_options`` go to ``FasterRCNN`` (``box_batch_size_per_image``, ``rpn_*``, ...). The model
    has ``backbone_name`` and ``pretrained_report`` (None, or which keys loaded).
    """
    _check_arguments(backbone, num_classes, batchnorm, anchor_sizes, aspect_ratios)
    mean, std = normalisation(in_channels, image_mean, image_std)
    start = BackboneStart(in_channels, pretrained, batchnorm, freeze_at)
    body, pool, head, representation_size, report = _parts(
        backbone, start, roi_output_size, stride_in_1x1, shortcut
    )
    model = FasterRCNN(
        body,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        image_mean=mean,
        image_std=std,
        rpn_anchor_generator=single_level_anchors(anchor_sizes, aspect_ratios),
        box_roi_pool=pool,
        box_head=head,
        box_predictor=FastRCNNPredictor(representation_size, num_classes),
        **faster_rcnn_options,
    )
    if train_min_sizes:
        model.transform = MultiScaleTrainingTransform(train_min_sizes, min_size, max_size, mean, std)
    if global_context:
        add_global_context(model)
    model.backbone_name, model.pretrained_report, model.batchnorm = backbone, report, batchnorm
    return model


def _parts(backbone: str, start: BackboneStart, roi_output_size: int | None, stride_in_1x1: bool, shortcut) -> Parts:
    """ResNet C4 and vgg_c4 (14x14 RoIs by default) or VGG with an fc head (7x7)."""
    if backbone in RESNETS:
        return resnet_parts(backbone, start, roi_output_size or 14, stride_in_1x1, shortcut)
    return _vgg_parts(backbone, start, roi_output_size or (14 if backbone in C4_HEADS else 7))


def _check_arguments(
    backbone: str,
    num_classes: int,
    batchnorm: str,
    anchor_sizes: Sequence[float],
    aspect_ratios: Sequence[float],
) -> None:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown detection backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if batchnorm not in ("frozen", "train"):
        raise ValueError(f"batchnorm must be 'frozen' or 'train', got {batchnorm!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background too and must be >= 2, got {num_classes}")
    if not anchor_sizes or not aspect_ratios:
        raise ValueError("anchor_sizes and aspect_ratios must be non-empty")


def single_level_anchors(anchor_sizes: Sequence[float], aspect_ratios: Sequence[float]) -> AnchorGenerator:
    """Anchors on the single stride-16 feature map (ref. [32]: 3 scales x 3 aspect ratios)."""
    return AnchorGenerator(
        sizes=(tuple(float(s) for s in anchor_sizes),),
        aspect_ratios=(tuple(float(a) for a in aspect_ratios),),
    )


def count_macs(model: FasterRCNN, image_size: int, in_channels: int = 3) -> dict[str, float]:
    """Multiply-adds of the whole detector for one ``image_size`` square image, per part and in total.

    Parts: the backbone on the image, the RPN head on its feature map, per RoI the RoI head (for the
    C4 design conv5_x, Sec. 4.3) plus the box predictor, and with global context the RoI head once more
    per image on the whole image (``context_macs``). The totals run the per-RoI part once per RoI:
    ``train_macs`` on the RoIs sampled per training image (``box_batch_size_per_image``), ``test_macs`` on
    the proposals kept per test image (``rpn_post_nms_top_n`` at test; NMS may keep fewer). Forward pass
    only; RoIAlign, anchors and NMS are not multiply-adds and are not counted.
    """
    was_training = model.training
    model.eval()
    try:
        out = _macs_by_part(model, image_size, in_channels)
    finally:
        model.train(was_training)
    out["train_rois"] = float(model.roi_heads.fg_bg_sampler.batch_size_per_image)
    out["test_rois"] = float(model.rpn._post_nms_top_n["testing"])
    per_image = out["backbone_macs"] + out["rpn_macs"] + out["context_macs"]
    out["train_macs"] = per_image + out["train_rois"] * out["head_macs_per_roi"]
    out["test_macs"] = per_image + out["test_rois"] * out["head_macs_per_roi"]
    assert all(math.isfinite(v) for v in out.values())
    return out


def _macs_by_part(model: FasterRCNN, image_size: int, in_channels: int) -> dict[str, float]:
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, image_size, image_size, device=device)
    with torch.no_grad():
        feat = model.backbone(x)
        size = model.roi_heads.box_roi_pool.output_size
        size = size if isinstance(size, int) else size[0]
        roi = torch.zeros(1, feat.shape[1], size, size, device=device)
        heads = model.roi_heads
        parts = {"backbone_macs": _macs(model.backbone, x), "rpn_macs": _macs(model.rpn.head, [feat])}
        if isinstance(heads.box_head, ContextHead):  # one RoI and its image: subtract the image's share
            context = _macs(heads.box_head.head, roi)
            both = _macs(lambda r: heads.box_predictor(heads.box_head(WithContext(r, r, [1]))), roi)
            return {**parts, "head_macs_per_roi": both - context, "context_macs": context}
        per_roi = _macs(lambda r: heads.box_predictor(heads.box_head(r)), roi)
        return {**parts, "head_macs_per_roi": per_roi, "context_macs": 0.0}


def backbone_macs(model: FasterRCNN, side: int, in_channels: int = 3) -> float:
    """Multiply-adds of ``model``'s backbone on one ``side`` x ``side`` image (a level of a test pyramid).
    Counted in eval mode, as ``count_macs``: in training mode the zero image would overwrite the batch-norm
    running statistics (issue 22: Table 9's "context alone" rows were tested after that, at 3.4-5.4 mAP@.5)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _macs(model.backbone, torch.zeros(1, in_channels, side, side, device=device))
    finally:
        model.train(was_training)


def _macs(fn: Any, *args: Any) -> float:
    """Multiply-adds of ``fn(*args)`` (``FlopCounterMode`` counts 2 FLOPs per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return float(counter.get_total_flops() / 2)
