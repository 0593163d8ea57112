"""Sec. 3.4's ways of testing a trained ImageNet-style net, on the same class folders.

- ``center_crop``: the shorter side resized to ``resize``, one ``crop`` x ``crop`` centre crop.
- ``ten_crop``: "the standard 10-crop testing [21]" of the comparison studies (Tables 2 and 3): the four
  corner and the centre crops and their mirrors, softmax averaged.
- ``multiscale``: "For best results, we adopt the fully-convolutional form as in [41, 13], and average the
  scores at multiple scales (images are resized such that the shorter side is in {224, 256, 384, 480,
  640})" (Table 4). The whole resized image goes through the net; the fc layer acts as a 1x1 convolution
  over the final feature map (``score_map``), whose class scores are averaged over positions as in [41];
  each view's softmax (every scale, and its mirror with ``flip``) is averaged.

Because the fc layer is linear, averaging its score map over positions equals the usual forward pass
(global average pool, then fc) at any input size; ``score_map`` makes the fully-convolutional form
explicit and testable. For a crop other than 224 (the CPU stand-ins), ``scaled_sides`` scales the paper's
shorter sides by ``crop / 224``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms
from torchvision.transforms import functional as TF
from tqdm import tqdm

from .. import paper
from ..data.imagenet import IMAGENET_MEAN, imagenet_transforms
from ..devices import autocast as autocast_factory

__all__ = ["METHODS", "Method", "Predictions", "predict", "scaled_sides", "score_map"]

Method = Literal["center_crop", "ten_crop", "multiscale"]
#: The test protocols, cheapest first.
METHODS: tuple[Method, ...] = ("center_crop", "ten_crop", "multiscale")
PAPER_CROP = paper.IMAGENET_PROTOCOL["crop"]


@dataclass(frozen=True)
class Predictions:
    """Class probabilities ``probs`` [N, classes] (float32, CPU) of N test images and their ``labels`` [N]."""

    probs: torch.Tensor
    labels: torch.Tensor
    #: multi-scale testing only: each shorter side's own probabilities (its views averaged), to show which
    #: scales help; computed in the same pass.
    per_side: dict[int, torch.Tensor] | None = None

    def side_errors(self, ks: Sequence[int] = (1, 5)) -> dict[int, dict[str, float]]:
        """Top-k errors of each shorter side alone (empty unless multi-scale)."""
        return {side: Predictions(p, self.labels).errors(ks) for side, p in (self.per_side or {}).items()}

    def errors(self, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
        """Top-k error in percent for each k (k above the number of classes is left out)."""
        classes = self.probs.shape[1]
        out = {}
        for k in (k for k in ks if k <= classes):
            top = self.probs.topk(k, dim=1).indices
            out[f"top{k}"] = 100.0 * float((top != self.labels[:, None]).all(1).float().mean())
        return out


def scaled_sides(crop: int, sides: Sequence[int] = paper.IMAGENET_PROTOCOL["test_shorter_sides"]) -> tuple[int, ...]:
    """The paper's multi-scale shorter sides (for 224 crops) scaled to ``crop``: 64 -> (64, 73, 110, 137, 183)."""
    return tuple(sorted({max(1, round(s * crop / PAPER_CROP)) for s in sides}))


def _final_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """conv5_x's output of a Table 1 net (``resnetlib.models.ResNet``), before the global pool."""
    x = model.stem(x)
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = stage(x)
    return x


def score_map(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The fully-convolutional form (Sec. 3.4): the fc layer as a 1x1 convolution over conv5_x's map,
    [B, classes, h, w]. Its mean over positions equals ``model(x)``."""
    for name in ("stem", "layer1", "layer2", "layer3", "layer4", "fc"):
        if not hasattr(model, name):
            raise TypeError(f"score_map needs a Table 1 net (resnetlib.models.ResNet); {type(model).__name__} "
                            f"has no {name!r}")
    weight = model.fc.weight
    return F.conv2d(_final_features(model, x), weight.view(*weight.shape, 1, 1), model.fc.bias)


def _to_input() -> transforms.Compose:
    """PIL -> float tensor with the training pipeline's mean subtracted (``resnetlib.data.imagenet``)."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, [1.0] * 3)])


def _test_set(val_dir: str | Path, transform, images: int | None, seed: int) -> Dataset:
    from torchvision.datasets import ImageFolder

    val_dir = Path(val_dir)
    if not val_dir.is_dir():
        raise FileNotFoundError(f"no test class folders at {val_dir} (expected {val_dir}/<class>/<image>)")
    data = ImageFolder(str(val_dir), transform=transform, allow_empty=True)
    if len(data) == 0:
        raise FileNotFoundError(f"no images in the class folders of {val_dir}")
    if images is not None and images < len(data):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        data = Subset(data, order[:images].sort().values.tolist())
    return data


def _as_list(batch):
    return batch


@torch.no_grad()
def predict(
    model: nn.Module,
    val_dir: str | Path,
    method: Method,
    *,
    crop: int = PAPER_CROP,
    resize: int | None = None,
    sides: Sequence[int] | None = None,
    flip: bool = True,
    batch_size: int = 50,
    images: int | None = None,
    seed: int = 0,
    amp: str = "off",
    progress: bool = False,
) -> Predictions:
    """``model``'s class probabilities for the images under ``val_dir/<class>/`` by test ``method``.

    ``resize``: the shorter side before the centre or ten crops (default ``crop * 256 / 224``, the paper's
    256 for 224); ``sides``: multi-scale shorter sides (default ``scaled_sides(crop)``); ``flip``: average
    each scale with its mirror; ``images``: a seeded random subset of that many test images.
    """
    if method not in METHODS:
        raise ValueError(f"unknown test method {method!r}; choose one of {METHODS}")
    device = next(model.parameters()).device
    autocast = autocast_factory(amp, device)
    was_training = model.training
    model.eval()
    try:
        if method == "multiscale":
            data = _test_set(val_dir, None, images, seed)
            probs, labels, per_side = _multiscale(model, data, sides or scaled_sides(crop), flip, batch_size,
                                                  device, autocast, progress)
            return Predictions(probs, labels, per_side)
        else:
            resize = resize or round(crop * 256 / PAPER_CROP)
            transform = (imagenet_transforms(False, scale=(resize, resize), crop=crop) if method == "ten_crop"
                         else transforms.Compose([transforms.Resize(resize, antialias=True),
                                                  transforms.CenterCrop(crop), _to_input()]))
            data = _test_set(val_dir, transform, images, seed)
            probs, labels = _cropped(model, data, batch_size, device, autocast, progress, method)
    finally:
        model.train(was_training)
    return Predictions(probs, labels)


def _cropped(model, data, batch_size, device, autocast, progress, method) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre crops [B,C,H,W] or ten crops [B,10,C,H,W]: softmax, averaged over the crops."""
    probs, labels = [], []
    for x, y in tqdm(DataLoader(data, batch_size), desc=method, disable=not progress):
        crops = x.shape[1] if x.dim() == 5 else 1
        with autocast():
            logits = model(x.flatten(0, 1).to(device) if crops > 1 else x.to(device)).float()
        probs.append(logits.softmax(1).view(len(y), crops, -1).mean(1).cpu())
        labels.append(y)
    return torch.cat(probs), torch.cat(labels)


def _multiscale(model, data, sides, flip, batch_size, device, autocast, progress):
    """Table 4's testing: each image at every shorter side in ``sides`` (and mirrored), whole, through the
    fully-convolutional net; the views' softmax averaged. Images of one size are batched together.
    Returns (probs, labels, {side: that side's probs})."""
    to_input = _to_input()
    per_view = 2 if flip else 1
    probs, labels, per_side = [], [], defaultdict(list)
    loader = DataLoader(data, batch_size, collate_fn=_as_list)
    for batch in tqdm(loader, desc=f"multiscale {list(sides)}", total=math.ceil(len(data) / batch_size),
                      disable=not progress):
        total = None
        for side in sides:
            by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
            inputs = [to_input(TF.resize(img, side, antialias=True)) for img, _ in batch]
            for i, x in enumerate(inputs):
                by_shape[tuple(x.shape)].append(i)
            side_probs = torch.empty(len(batch), 0)
            for index in by_shape.values():
                x = torch.stack([inputs[i] for i in index]).to(device)
                p = _view_probs(model, x, autocast) + (_view_probs(model, x.flip(-1), autocast) if flip else 0)
                if side_probs.shape[1] == 0:
                    side_probs = torch.zeros(len(batch), p.shape[1])
                side_probs[index] = p.cpu()
            per_side[side].append(side_probs / per_view)
            total = side_probs if total is None else total + side_probs
        probs.append(total / (per_view * len(sides)))
        labels.append(torch.tensor([y for _, y in batch]))
    return torch.cat(probs), torch.cat(labels), {side: torch.cat(p) for side, p in per_side.items()}


def _view_probs(model, x, autocast) -> torch.Tensor:
    with autocast():
        scores = score_map(model, x).float().mean((2, 3))
    return scores.softmax(1)
