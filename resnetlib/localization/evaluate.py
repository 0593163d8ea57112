"""ImageNet localization errors (appendix C, Tables 13 and 14), from a localizer's per-class boxes.

ILSVRC's rule: an image is localized correctly when one of the (class, box) guesses has the image's
class and its box overlaps one of that class's ground-truth boxes by IoU >= 0.5. The paper reports it
with the ground-truth class as the guess ("oracle", Table 13's first rows: 13.3% centre crop, ResNet-101)
and with the top-5 classes a classifier predicts (14.4% with RPN alone; 9.0% on the test set with
its whole system, Table 14); both are here, with the classification errors they rest on. The outputs
come from ``resnetlib.detection.evaluate.predict`` run on a ``PerClassRPN``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torchvision.ops import box_iou

__all__ = ["IOU_THRESHOLD", "localization_errors"]

#: ILSVRC localization: a box is correct at IoU >= 0.5 with a ground-truth box of the class.
IOU_THRESHOLD = 0.5


def localization_errors(outputs: Iterable[Mapping[str, torch.Tensor]], targets: Iterable[Mapping[str, torch.Tensor]],
                        top_k: int = 5) -> dict[str, float]:
    """Errors in percent over the images: ``cls_top1``/``cls_top{k}`` (classification), ``loc_gt_class``
    (the box of the true class), ``loc_top1``/``loc_top{k}`` (the predicted classes' boxes), and ``images``."""
    counts = dict.fromkeys(("cls_top1", f"cls_top{top_k}", "loc_gt_class", "loc_top1", f"loc_top{top_k}"), 0)
    n = 0
    for out, target in zip(outputs, targets, strict=True):
        label = int(target["labels"][0])
        scores = out["class_scores"].clone()
        scores[0] = -1.0  # background is never a guess
        ranked = scores.argsort(descending=True)[:top_k].tolist()
        iou = box_iou(out["boxes"][label : label + 1], target["boxes"][target["labels"] == label])
        box_ok = bool((iou >= IOU_THRESHOLD).any())
        counts["cls_top1"] += ranked[0] != label
        counts[f"cls_top{top_k}"] += label not in ranked
        counts["loc_gt_class"] += not box_ok
        counts["loc_top1"] += not (ranked[0] == label and box_ok)
        counts[f"loc_top{top_k}"] += not (label in ranked and box_ok)
        n += 1
    if n == 0:
        raise ValueError("no images to evaluate")
    return {**{k: 100.0 * v / n for k, v in counts.items()}, "images": n}
