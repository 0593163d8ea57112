"""Appendix C: ImageNet localization with a per-class RPN on a ResNet (Tables 13 and 14).

The paper: "Unlike the way in [32] that is category-agnostic, our RPN for localization is designed in a
per-class form. This RPN ends with two sibling 1x1 convolutional layers for binary classification (cls)
and box regression (reg), as in [32]. The cls and reg layers are both in a per-class form, in contrast
to [32]. Specifically, the cls layer has a 1000-d output, and each dimension is binary logistic
regression for predicting being or not being an object class; the reg layer has a 1000x4-d output
consisting of box regressors for 1000 classes. As in [32], our bounding box regression is with reference
to multiple translation-invariant 'anchor' boxes at each position." Training: "8 anchors are randomly
sampled for each image, where the sampled positive and negative anchors have a ratio of 1:1 [32]";
testing: "the network is applied on the image fully-convolutionally". For a class, the predicted box is
the regressed box of the anchor that class scores highest.

Built from torchvision's detection parts (``GeneralizedRCNNTransform`` for resizing and normalising,
``AnchorGenerator``, ``Matcher``, ``BalancedPositiveNegativeSampler``, ``BoxCoder``) on our ResNet's C4
trunk (conv1 .. conv4_x, stride 16, as the detector's). The classes to localize come, as in the paper,
from a classifier: here a classification head on the same trunk (conv5_x, global average pooling, fc),
trained jointly; the paper uses a separate ResNet-101 classifier (deviation listed in the notebook).
Training returns a loss dict (``loss_objectness``: the per-class logistic loss, ``loss_rpn_box_reg``,
``loss_classifier``), so ``resnetlib.detection.train`` trains it like a detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import box_iou
from torchvision.ops import boxes as box_ops

from ..detection.model import RESNETS, BackboneStart, normalisation, resnet_parts, single_level_anchors

__all__ = ["PAPER_ANCHORS_PER_IMAGE", "Pass", "PerClassRPN"]

#: "8 anchors are randomly sampled for each image ... positive and negative ... 1:1".
PAPER_ANCHORS_PER_IMAGE = 8


@dataclass
class Pass:
    """One forward pass of a ``PerClassRPN`` up to its losses or boxes (``PerClassRPN.passes``)."""

    original: list[tuple[int, int]]  # the input images' (height, width)
    batch: ImageList  # resized and normalised
    targets: list[dict[str, torch.Tensor]] | None  # resized with the images
    features: torch.Tensor  # C4
    logits: torch.Tensor  # (N, M, K)
    deltas: torch.Tensor  # (N, M, K, 4)
    anchors: list[torch.Tensor]
    class_logits: torch.Tensor  # (N, K)


class PerClassRPN(nn.Module):
    """A per-class RPN localizer with a classification head; labels are 1..K (0 is background, as in
    torchvision's detectors), ``num_classes`` counts the background.

    ``forward(images, targets)`` in training returns the losses; in eval mode, per image, a dict with
    ``class_scores`` (K+1 softmax, index 0 unused), ``boxes`` ((K+1, 4): each class's best box, in the
    input image's coordinates) and ``box_scores`` ((K+1,): that anchor's logistic score)."""

    def __init__(
        self,
        trunk: nn.Module,
        classifier: nn.Module,
        num_classes: int,
        transform: GeneralizedRCNNTransform,
        anchor_generator: AnchorGenerator,
        *,
        fg_iou: float = 0.7,
        bg_iou: float = 0.3,
        anchors_per_image: int = PAPER_ANCHORS_PER_IMAGE,
        positive_fraction: float = 0.5,
    ) -> None:
        super().__init__()
        channels = trunk.out_channels
        self.trunk, self.classifier, self.transform = trunk, classifier, transform
        self.anchor_generator = anchor_generator
        self.num_anchors = anchor_generator.num_anchors_per_location()[0]
        self.num_classes = num_classes
        k = num_classes - 1
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, self.num_anchors * k, 1)
        self.bbox_pred = nn.Conv2d(channels, self.num_anchors * k * 4, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):  # as torchvision's RPN head
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)
        self.matcher = det_utils.Matcher(fg_iou, bg_iou, allow_low_quality_matches=True)
        self.sampler = det_utils.BalancedPositiveNegativeSampler(anchors_per_image, positive_fraction)
        self.box_coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))

    def head(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per anchor (torchvision's order: position-major, then anchor): (N, M, K) logits, (N, M, K, 4)."""
        n, _, h, w = features.shape
        a, k = self.num_anchors, self.num_classes - 1
        t = F.relu(self.conv(features))
        logits = self.cls_logits(t).view(n, a, k, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, k)
        deltas = self.bbox_pred(t).view(n, a, k * 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, k, 4)
        return logits, deltas

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        p = self.passes(images, targets)
        if self.training:
            return self.losses(p.logits, p.deltas, p.anchors, p.class_logits, p.targets)
        return self.predict(p.logits, p.deltas, p.anchors, p.class_logits, p.batch, p.original)

    def passes(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None) -> Pass:
        """The forward pass up to the losses or the boxes: resized batch, C4 features, per-class logits and
        deltas per anchor, the anchors, the classification head's logits (the R-CNN stage starts here)."""
        if self.training and targets is None:
            raise ValueError("training needs targets (boxes and labels per image)")
        original = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batch, targets = self.transform(images, targets)
        features = self.trunk(batch.tensors)
        logits, deltas = self.head(features)
        anchors = self.anchor_generator(batch, [features])
        return Pass(original, batch, targets, features, logits, deltas, anchors, self.classifier(features))

    def losses(self, logits, deltas, anchors, class_logits, targets) -> dict[str, torch.Tensor]:
        """Per image 8 sampled anchors (1:1): logistic loss on every class's output (1 only for the
        positive anchors' own class), smooth-L1 on the own class's regressor of the positives; and the
        classification head's cross-entropy on the image's class."""
        cls_terms, reg_terms, sampled_total = [], [], 0
        for img_logits, img_deltas, img_anchors, target in zip(logits, deltas, anchors, targets):
            match = self.matcher(box_iou(target["boxes"], img_anchors))
            pos, neg = self.sample(match)
            sampled = torch.cat([pos, neg])
            gt = match[pos].clamp(min=0)
            goal = torch.zeros_like(img_logits[sampled])
            own = target["labels"][gt] - 1
            goal[torch.arange(len(pos)), own] = 1.0
            cls_terms.append(F.binary_cross_entropy_with_logits(img_logits[sampled], goal, reduction="sum"))
            encoded = self.box_coder.encode_single(target["boxes"][gt], img_anchors[pos])
            reg_terms.append(F.smooth_l1_loss(img_deltas[pos, own], encoded, beta=1 / 9, reduction="sum"))
            sampled_total += len(sampled)
        labels = torch.stack([t["labels"][0] for t in targets])
        return {
            "loss_objectness": sum(cls_terms) / max(1, sampled_total),  # per sampled anchor, summed over classes
            "loss_rpn_box_reg": sum(reg_terms) / max(1, sampled_total),
            "loss_classifier": F.cross_entropy(class_logits, labels - 1),
        }

    def sample(self, match: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the anchors sampled for the loss: positives (matched to a box: IoU >= ``fg_iou``, or
        a box's best anchor) and negatives (IoU < ``bg_iou`` with every box), at most ``anchors_per_image``
        in all, half positive where there are enough ([32]'s sampler, which reads 1 / 0 / -1 labels)."""
        labels = (match >= 0).to(torch.float32)
        labels[match == self.matcher.BETWEEN_THRESHOLDS] = -1.0
        pos, neg = self.sampler([labels])
        return torch.where(pos[0])[0], torch.where(neg[0])[0]

    def predict(self, logits, deltas, anchors, class_logits, batch: ImageList, original) -> list[dict]:
        """Each class's box: the regressed box of the anchor with that class's highest logistic score."""
        out = []
        scores = F.softmax(class_logits, dim=1)
        for i, (img_logits, img_deltas, img_anchors) in enumerate(zip(logits, deltas, anchors)):
            best = img_logits.argmax(dim=0)  # (K,) anchor per class
            k = torch.arange(len(best), device=best.device)
            boxes = self.box_coder.decode_single(img_deltas[best, k], img_anchors[best])
            boxes = box_ops.clip_boxes_to_image(boxes, batch.image_sizes[i])
            boxes = _rescale(boxes, batch.image_sizes[i], original[i])
            background = boxes.new_zeros(1, 4)
            out.append({
                "boxes": torch.cat([background, boxes]),
                "box_scores": torch.cat([boxes.new_zeros(1), torch.sigmoid(img_logits[best, k])]),
                "class_scores": torch.cat([scores.new_zeros(1), scores[i]]),
            })
        return out


def _rescale(boxes: torch.Tensor, resized: Sequence[int], original: Sequence[int]) -> torch.Tensor:
    ratio_h, ratio_w = original[0] / resized[0], original[1] / resized[1]
    return boxes * boxes.new_tensor([ratio_w, ratio_h, ratio_w, ratio_h])


def build_localizer(
    backbone: str,
    num_classes: int,
    *,
    min_size: int,
    max_size: int,
    anchor_sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    in_channels: int = 3,
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    pretrained: str | None = None,
    batchnorm: str = "frozen",
    freeze_at: int = 0,
    anchors_per_image: int = PAPER_ANCHORS_PER_IMAGE,
    stride_in_1x1: bool = True,
    shortcut: str | None = None,
) -> PerClassRPN:
    """A ``PerClassRPN`` on ResNet ``backbone``'s C4 trunk, its conv5_x + fc as the classifier; the
    arguments mean what they mean for ``resnetlib.detection.model.build_detector``."""
    if backbone not in RESNETS:
        raise ValueError(f"the localizer needs a ResNet backbone ({', '.join(RESNETS)}), got {backbone!r}")
    mean, std = normalisation(in_channels, image_mean, image_std)
    start = BackboneStart(in_channels, pretrained, batchnorm, freeze_at)
    trunk, _, conv5, width, report = resnet_parts(backbone, start, 14, stride_in_1x1, shortcut)
    classifier = nn.Sequential(conv5, nn.Linear(width, num_classes - 1))
    model = PerClassRPN(
        trunk, classifier, num_classes, GeneralizedRCNNTransform(min_size, max_size, mean, std),
        single_level_anchors(anchor_sizes, aspect_ratios), anchors_per_image=anchors_per_image,
    )
    model.backbone_name, model.pretrained_report, model.batchnorm = backbone, report, batchnorm
    return model
