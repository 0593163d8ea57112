"""Test-time improvements of a trained detector (appendix A, Table 9): box refinement and multi-scale testing.

``ImprovedInference(detector, InferenceOptions(...))`` is a module that detects like the torchvision model it
wraps (same inputs, same outputs: boxes, scores and labels in the input images' coordinates), so
``evaluate_detector`` scores it unchanged. With neither option it gives exactly the detector's own output.

Box refinement, as the paper (after ref. [6]'s iterative localization): "for inference, we pool a new
feature from the regressed box and obtain a new classification score and a new regressed box. We combine
these 300 new predictions with the original 300 predictions. Non-maximum suppression (NMS) is applied on
the union set of predicted boxes using an IoU threshold of 0.3 [8], followed by box voting [6]." Each
proposal's regressed box is that of its highest-scoring object class; box voting replaces each box kept
by NMS with the score-weighted mean of the union's boxes of its class that overlap it by IoU >= 0.5 ([6]).

Multi-scale testing (``multiscale.pyramid_pool``): the proposals of the single-scale RPN are pooled on
two adjacent scales of an image pyramid, merged by maxout; both passes of box refinement use it too.
A detector with global context (``context.py``) joins its whole-image feature, pooled at the base scale.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import box_iou
from torchvision.ops import boxes as box_ops

from .context import ContextRoIPool, WithContext, whole_image_boxes
from .model import backbone_macs, count_macs
from .multiscale import PAPER_TARGET_SIDE, pyramid_features, pyramid_pool

__all__ = ["ImprovedInference", "InferenceOptions", "box_voting", "inference_macs", "refined_boxes"]


@dataclass(frozen=True)
class InferenceOptions:
    """What the detector does at test time beyond a single pass at one scale.

    ``test_scales``: the image pyramid, relative to the model's image size (empty = single scale; the
    paper's is ``multiscale.PAPER_TEST_SCALES``). ``refine_nms_iou`` and ``vote_iou``: box refinement's
    NMS threshold on the union (paper: 0.3) and box voting's overlap (ref. [6]: 0.5)."""

    box_refinement: bool = False
    test_scales: tuple[float, ...] = ()
    refine_nms_iou: float = 0.3
    vote_iou: float = 0.5
    target_side: float = PAPER_TARGET_SIDE

    def __post_init__(self) -> None:
        if any(s <= 0 for s in self.test_scales):
            raise ValueError(f"test_scales must be positive, got {self.test_scales}")
        if self.test_scales and 1.0 not in self.test_scales:
            raise ValueError(f"test_scales must include 1.0 (the model's own scale), got {self.test_scales}")
        for name in ("refine_nms_iou", "vote_iou"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


class ImprovedInference(nn.Module):
    """``detector`` at test time with ``options``; ``forward(images)`` returns torchvision's detections."""

    def __init__(self, detector: FasterRCNN, options: InferenceOptions) -> None:
        super().__init__()
        self.detector = detector
        self.options = options

    @property
    def roi_heads(self):
        return self.detector.roi_heads

    @property
    def backbone_name(self) -> str:
        return getattr(self.detector, "backbone_name", "detector")

    @torch.no_grad()
    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        if self.training:
            raise RuntimeError("ImprovedInference is for testing: call .eval() (train the detector itself)")
        d, heads = self.detector, self.detector.roi_heads
        original = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batch, _ = d.transform(images)
        features = d.backbone(batch.tensors)
        features = OrderedDict([("0", features)]) if isinstance(features, torch.Tensor) else features
        proposals, _ = d.rpn(batch, features)
        scales = self.options.test_scales
        pyramid = pyramid_features(d.backbone, batch.tensors, scales) if scales else None
        scored = _Scorer(d, features, pyramid, batch, self.options)
        logits, deltas = scored(proposals)
        boxes, scores, labels = _candidates(heads, logits, deltas, proposals, batch.image_sizes)
        if self.options.box_refinement:
            again = refined_boxes(heads, logits, deltas, proposals, batch.image_sizes)
            logits2, deltas2 = scored(again)
            boxes2, scores2, labels2 = _candidates(heads, logits2, deltas2, again, batch.image_sizes)
            results = [
                _nms_and_vote(torch.cat([b1, b2]), torch.cat([s1, s2]), torch.cat([l1, l2]), heads, self.options)
                for b1, s1, l1, b2, s2, l2 in zip(boxes, scores, labels, boxes2, scores2, labels2)
            ]
        else:
            results = [_nms(b, s, lab, heads.nms_thresh, heads.detections_per_img)
                       for b, s, lab in zip(boxes, scores, labels)]
        detections = [{"boxes": b, "scores": s, "labels": lab} for b, s, lab in results]
        return d.transform.postprocess(detections, batch.image_sizes, original)


@dataclass
class _Scorer:
    """Class logits and box deltas of given boxes: pooled at one scale, or on two pyramid scales merged by
    maxout; with the whole image's feature joined where the detector has global context."""

    detector: FasterRCNN
    features: OrderedDict
    pyramid: list[torch.Tensor] | None
    batch: object  # torchvision ImageList
    options: InferenceOptions

    def __call__(self, boxes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        heads = self.detector.roi_heads
        pool, sizes = heads.box_roi_pool, self.batch.image_sizes
        if self.pyramid is None:
            x = pool(self.features, boxes, sizes)
        else:
            inner = pool.pool if isinstance(pool, ContextRoIPool) else pool
            x = pyramid_pool(
                self.pyramid, boxes, sizes, tuple(self.batch.tensors.shape[-2:]), self.options.test_scales,
                output_size=inner.output_size[0], sampling_ratio=inner.sampling_ratio,
                target_side=self.options.target_side,
            )
            if isinstance(pool, ContextRoIPool):
                images = inner(self.features, whole_image_boxes(sizes, boxes[0]), sizes)
                x = WithContext(x, images, [len(b) for b in boxes])
        return heads.box_predictor(heads.box_head(x))


@contextmanager
def _keeping_everything(heads):
    """``postprocess_detections`` without its NMS (IoU > 1 never happens) and top-k."""
    saved = heads.nms_thresh, heads.detections_per_img
    heads.nms_thresh, heads.detections_per_img = 1.0, 1 << 30
    try:
        yield heads
    finally:
        heads.nms_thresh, heads.detections_per_img = saved


def _candidates(heads, logits, deltas, boxes, image_sizes):
    """Every (box, class) scored above the detector's threshold, per image: torchvision's own decoding,
    clipping, background removal and score threshold."""
    with _keeping_everything(heads):
        return heads.postprocess_detections(logits, deltas, boxes, image_sizes)


def refined_boxes(heads, logits: torch.Tensor, deltas: torch.Tensor, proposals: list[torch.Tensor],
                  image_sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Per proposal, its regressed box for its highest-scoring object class (clipped to the image)."""
    decoded = heads.box_coder.decode(deltas, proposals)  # (R, classes, 4)
    best = logits[:, 1:].argmax(dim=1) + 1
    chosen = decoded[torch.arange(len(best), device=best.device), best]
    out = []
    for part, size in zip(chosen.split([len(p) for p in proposals]), image_sizes):
        out.append(box_ops.clip_boxes_to_image(part, size))
    return out


def _nms(boxes, scores, labels, iou: float, top_k: int):
    keep = box_ops.batched_nms(boxes, scores, labels, iou)[:top_k]
    return boxes[keep], scores[keep], labels[keep]


def box_voting(kept: torch.Tensor, kept_labels: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor,
               labels: torch.Tensor, iou: float) -> torch.Tensor:
    """Each kept box replaced by the score-weighted mean of ``boxes`` of its class overlapping it by
    IoU >= ``iou`` (itself included), ref. [6]."""
    if len(kept) == 0:
        return kept
    weights = (box_iou(kept, boxes) >= iou) & (kept_labels[:, None] == labels[None, :])
    weights = weights.to(scores.dtype) * scores[None, :]
    return (weights @ boxes) / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)


def _nms_and_vote(boxes, scores, labels, heads, options: InferenceOptions):
    """Box refinement's merge: NMS at ``refine_nms_iou`` on the union, box voting, then the top-k."""
    keep = box_ops.batched_nms(boxes, scores, labels, options.refine_nms_iou)[: heads.detections_per_img]
    voted = box_voting(boxes[keep], labels[keep], boxes, scores, labels, options.vote_iou)
    return voted, scores[keep], labels[keep]


def inference_macs(detector: FasterRCNN, image_size: int, options: InferenceOptions, in_channels: int = 3) -> float:
    """Multiply-adds per test image of ``detector`` with ``options``: the backbone on every pyramid scale,
    the RPN once, the per-RoI head once per pass (twice with box refinement); NMS and voting not counted."""
    base = count_macs(detector, image_size, in_channels)
    backbone = base["backbone_macs"]
    if options.test_scales:
        backbone = sum(backbone_macs(detector, max(1, round(image_size * s)), in_channels)
                       for s in options.test_scales)
    passes = 2 if options.box_refinement else 1
    per_pass = base["context_macs"] + base["test_rois"] * base["head_macs_per_roi"]
    return backbone + base["rpn_macs"] + passes * per_pass
