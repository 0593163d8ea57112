"""Multi-scale training and testing of the detector (appendix A, "Multi-scale testing", Table 9).

Testing, as the paper: "we have performed multi-scale testing only for the Fast R-CNN step (but not yet
for the RPN step). With a trained model, we compute conv feature maps on an image pyramid, where the
image's shorter sides are s in {200, 400, 600, 800, 1000}. We select two adjacent scales from the pyramid
following [33]. RoI pooling and subsequent layers are performed on the feature maps of these two scales
[33], which are merged by maxout as in [33]." (+2.7 mAP@.5 on COCO.) The proposals come from the
single-scale RPN; each RoI takes the scale at which its area is closest to 224 x 224 at the 600 px scale
(SPP-net's rule, ref. [12]) and the adjacent scale closer to it, and the two pooled features are merged
element-wise by max before the post-RoI layers. Scales are given relative to the model's own image size
(the paper's are 1/3, 2/3, 1, 4/3, 5/3 of 600).

Training: the paper did *not* train at several scales ("we have not performed multi-scale training because
of limited time"); this option (the shorter side drawn per image from a set, refs. [12, 7]) is ours, so its
row has no paper number beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import roi_align

__all__ = [
    "PAPER_TARGET_SIDE",
    "PAPER_TEST_SCALES",
    "MultiScaleTrainingTransform",
    "pyramid_features",
    "pyramid_pool",
    "two_adjacent_scales",
]

#: The paper's test pyramid, shorter sides {200, 400, 600, 800, 1000}, relative to its 600 px images.
PAPER_TEST_SCALES = (1 / 3, 2 / 3, 1.0, 4 / 3, 5 / 3)
#: SPP-net's choice of scale: the RoI's area closest to 224 x 224, at the paper's 600 px (as a fraction).
PAPER_TARGET_SIDE = 224 / 600


class MultiScaleTrainingTransform(GeneralizedRCNNTransform):
    """torchvision's transform, with the training image's shorter side drawn from ``train_sizes`` (torch's
    RNG, so seeded runs repeat); at test the shorter side stays ``min_size``."""

    def __init__(self, train_sizes: Sequence[int], min_size: int, *args, **kwargs) -> None:
        super().__init__(min_size, *args, **kwargs)
        if not train_sizes or min(train_sizes) < 1:
            raise ValueError(f"train_sizes must be positive image sides, got {list(train_sizes)}")
        self.train_sizes = tuple(int(s) for s in train_sizes)

    def torch_choice(self, k: list[int]) -> int:  # only called in training
        return super().torch_choice(list(self.train_sizes))


def pyramid_features(backbone: torch.nn.Module, images: torch.Tensor, scales: Sequence[float]) -> list[torch.Tensor]:
    """The backbone's feature map of the (normalised, batched) ``images`` resized by each scale."""
    out = []
    for s in scales:
        x = images if s == 1.0 else F.interpolate(images, scale_factor=s, mode="bilinear", align_corners=False)
        out.append(backbone(x))
    return out


def two_adjacent_scales(
    boxes: torch.Tensor, scales: Sequence[float], target_areas: torch.Tensor | float
) -> torch.Tensor:
    """(R, 2) indices into ``scales``: per box, the scale at which its area is closest to its target area
    (SPP-net) and the neighbouring scale whose area is next closest (ref. [33]'s two adjacent scales)."""
    s = torch.as_tensor(scales, dtype=boxes.dtype, device=boxes.device)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1e-6)
    target = torch.as_tensor(target_areas, dtype=boxes.dtype, device=boxes.device).expand_as(area)
    distance = (area[:, None] * s[None, :] ** 2 - target[:, None]).abs()
    n = distance.shape[1]
    best = distance.argmin(dim=1)
    if n == 1:
        return torch.stack([best, best], dim=1)
    inf = torch.full_like(area, float("inf"))
    below, above = (best - 1).clamp(min=0), (best + 1).clamp(max=n - 1)
    d_below = torch.where(best > 0, distance.gather(1, below[:, None]).squeeze(1), inf)
    d_above = torch.where(best < n - 1, distance.gather(1, above[:, None]).squeeze(1), inf)
    return torch.stack([best, torch.where(d_below <= d_above, below, above)], dim=1)


def pyramid_pool(
    features: list[torch.Tensor],
    boxes: list[torch.Tensor],
    image_sizes: list[tuple[int, int]],
    padded_size: tuple[int, int],
    scales: Sequence[float],
    *,
    output_size: int,
    sampling_ratio: int,
    target_side: float,
) -> torch.Tensor:
    """RoIAlign of every box (per image, in the model's image coordinates) on the two adjacent pyramid
    scales ``two_adjacent_scales`` picks, merged by maxout (element-wise max); ``(R, C, out, out)``.

    ``features[k]`` is the feature map of the padded batch (``padded_size``) resized by ``scales[k]``;
    ``target_side``: the side, relative to each image's shorter side, that SPP-net's rule aims for."""
    flat = torch.cat(boxes)
    index = torch.cat([torch.full((len(b),), i, dtype=flat.dtype, device=flat.device) for i, b in enumerate(boxes)])
    targets = torch.cat([flat.new_full((len(b),), (target_side * min(size)) ** 2) for b, size in zip(boxes, image_sizes)])
    pairs, pooled = two_adjacent_scales(flat, scales, targets), None
    for k, s in enumerate(scales):
        chosen = (pairs == k).any(dim=1)
        if not chosen.any():
            continue
        fmap = features[k]
        spatial = 2.0 ** round(math.log2(fmap.shape[-1] / (padded_size[1] * s)))  # torchvision's rounding
        rois = torch.cat([index[chosen, None], flat[chosen] * s], dim=1)
        part = roi_align(fmap, rois, output_size, spatial_scale=spatial, sampling_ratio=sampling_ratio, aligned=False)
        if pooled is None:
            pooled = fmap.new_full((len(flat), *part.shape[1:]), float("-inf"))
        pooled[chosen] = torch.maximum(pooled[chosen], part)
    assert pooled is not None and torch.isfinite(pooled).all(), "every box pools from two scales"
    return pooled
