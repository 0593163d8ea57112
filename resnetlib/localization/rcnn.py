"""Appendix C's second stage, "RPN + RCNN": an R-CNN that re-scores and refines the per-class RPN's boxes.

The paper (appendix C, ImageNet localization): the per-class RPN's proposals are fed to an R-CNN [8] that
is "trained on the RPN's proposals": for each training image the highest-scored proposals are extracted
as training samples, and at test time "the RPN generates the highest scored 200 proposals for each
predicted class, and the R-CNN network is used to update these proposals' scores and box positions".
It lowers the top-5 localization error on ImageNet val from 14.4% (RPN alone) to 10.6% (Table 13).

Here, built on torchvision's ops: the trained ``PerClassRPN`` is kept fixed (its trunk, per-class head
and classifier; eval mode), its C4 features are RoI-aligned (``roi_align``, stride 16) for the proposals
and fed to a C4-style head (a copy of the RPN's conv5_x, global average pooling) with two sibling fc
layers, Fast R-CNN's: a (K+1)-way softmax and per-class box regressors. Proposals per class are the RPN's
anchors that class scores highest, regressed by that class's regressor, de-duplicated by NMS (0.7, as
[32]'s RPN). Training: per image the top ``proposals_train`` proposals (each anchor under its best class)
plus the ground-truth box, labelled with the box's class at IoU >= 0.5 and background below, ``rois_per_image``
of them sampled (a quarter positive, Fast R-CNN); cross-entropy + smooth-L1 on the own class's regressor.
Testing: for each of the ``top_k`` classes the classifier predicts (the paper: top-5), ``proposals_test``
proposals of that class are re-scored by the R-CNN's softmax for the class and regressed by its regressor;
the class's box is the best re-scored one. The other classes keep the RPN's boxes; the class scores stay
the classifier's (the R-CNN re-scores boxes, not images).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou, roi_align
from torchvision.ops import boxes as box_ops

from .model import PerClassRPN, _rescale

__all__ = ["FG_IOU", "PROPOSAL_NMS", "RCNNStage", "build_rcnn_stage"]

#: Fast R-CNN's labelling: a RoI is its box's class at IoU >= 0.5 with it, background below.
FG_IOU = 0.5
#: [32]'s RPN suppresses proposals overlapping a better one by IoU > 0.7.
PROPOSAL_NMS = 0.7
#: Fast R-CNN samples a quarter of its RoIs from the foreground.
FG_FRACTION = 0.25


class RCNNStage(nn.Module):
    """The R-CNN stage on a fixed, trained ``PerClassRPN``: training returns ``loss_classifier`` and
    ``loss_box_reg`` (so ``resnetlib.detection.train`` trains it like a detector); eval returns the RPN's
    output dict with the ``top_k`` predicted classes' boxes and box scores replaced by the R-CNN's."""

    def __init__(self, rpn: PerClassRPN, head: nn.Module, width: int, *, roi_output_size: int = 14,
                 proposals_train: int = 200, proposals_test: int = 200, rois_per_image: int = 64,
                 top_k: int = 5) -> None:
        super().__init__()
        self.rpn = rpn.eval()
        for p in self.rpn.parameters():
            p.requires_grad_(False)
        k = rpn.num_classes
        self.head, self.cls_score, self.bbox_pred = head, nn.Linear(width, k), nn.Linear(width, (k - 1) * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)  # as torchvision's / Fast R-CNN's predictor
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.constant_(layer.bias, 0)
        self.roi_output_size, self.top_k = roi_output_size, top_k
        self.proposals_train, self.proposals_test = proposals_train, proposals_test
        self.sampler = det_utils.BalancedPositiveNegativeSampler(rois_per_image, FG_FRACTION)
        self.box_coder = det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))  # Fast R-CNN's

    def train(self, mode: bool = True) -> RCNNStage:
        """Only the R-CNN head trains: the RPN stays in eval mode (its BN statistics fixed)."""
        super().train(mode)
        self.rpn.eval()
        return self

    def scores_and_deltas(self, features: torch.Tensor, rois: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, K+1) class logits and (R, K, 4) box deltas of the RoIs (per image, in the resized image)."""
        pooled = roi_align(features, rois, self.roi_output_size, spatial_scale=1 / 16, sampling_ratio=2)
        x = self.head(pooled)
        return self.cls_score(x), self.bbox_pred(x).view(len(x), -1, 4)

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None):
        if self.training and targets is None:
            raise ValueError("training needs targets (boxes and labels per image)")
        with torch.no_grad():
            p = self.rpn.passes(images, targets)
        sizes = p.batch.image_sizes
        if self.training:
            return self.losses(p.features, p.logits, p.deltas, p.anchors, sizes, p.targets)
        out = self.rpn.predict(p.logits, p.deltas, p.anchors, p.class_logits, p.batch, p.original)
        return self.refine(out, p.features, p.logits, p.deltas, p.anchors, sizes, p.original)

    # ------------------------------------------------------------------------------------- proposals
    def class_proposals(self, logits, deltas, anchors, classes: torch.Tensor, n: int, size) -> tuple[torch.Tensor, torch.Tensor]:
        """For each class index (0-based, of the RPN's K outputs) in ``classes``, its ``n`` best proposals:
        the anchors it scores highest, regressed by its own regressor, clipped, NMS'd per class.
        Returns (boxes (P, 4), their class index (P,))."""
        boxes, owners = [], []
        for c in classes.tolist():
            top = logits[:, c].topk(min(len(logits), 4 * n)).indices
            decoded = box_ops.clip_boxes_to_image(rpn_decode(self.rpn, deltas[top, c], anchors[top]), size)
            keep = box_ops.nms(decoded, logits[top, c], PROPOSAL_NMS)[:n]
            boxes.append(decoded[keep])
            owners.append(torch.full((len(keep),), c, dtype=torch.long, device=logits.device))
        return torch.cat(boxes), torch.cat(owners)

    def training_proposals(self, logits, deltas, anchors, size) -> torch.Tensor:
        """An image's ``proposals_train`` highest-scored proposals: each anchor under its best class,
        regressed by that class's regressor, NMS'd per class."""
        best, cls = logits.max(dim=1)
        top = best.topk(min(len(best), 4 * self.proposals_train)).indices
        decoded = box_ops.clip_boxes_to_image(rpn_decode(self.rpn, deltas[top, cls[top]], anchors[top]), size)
        keep = box_ops.batched_nms(decoded, best[top], cls[top], PROPOSAL_NMS)[: self.proposals_train]
        return decoded[keep]

    # ------------------------------------------------------------------------------------------ train
    def losses(self, features, logits, deltas, anchors, sizes, targets) -> dict[str, torch.Tensor]:
        """Fast R-CNN's losses on sampled RoIs of the RPN's proposals (and the ground-truth boxes)."""
        rois, labels, goals = [], [], []
        for i, target in enumerate(targets):
            proposals = torch.cat([self.training_proposals(logits[i], deltas[i], anchors[i], sizes[i]),
                                   target["boxes"]])
            iou = box_iou(proposals, target["boxes"])
            best_iou, gt = iou.max(dim=1)
            label = torch.where(best_iou >= FG_IOU, target["labels"][gt], torch.zeros_like(gt))
            pos, neg = self.sampler([label])
            sampled = torch.where(pos[0] | neg[0])[0]
            rois.append(proposals[sampled])
            labels.append(label[sampled])
            goals.append(self.box_coder.encode_single(target["boxes"][gt[sampled]], proposals[sampled]))
        class_logits, box_deltas = self.scores_and_deltas(features, rois)
        labels_, goals_ = torch.cat(labels), torch.cat(goals)
        fg = torch.where(labels_ > 0)[0]
        box_loss = F.smooth_l1_loss(box_deltas[fg, labels_[fg] - 1], goals_[fg], beta=1 / 9, reduction="sum")
        return {"loss_classifier": F.cross_entropy(class_logits, labels_),
                "loss_box_reg": box_loss / max(1, len(labels_))}

    # ------------------------------------------------------------------------------------------- test
    def refine(self, out, features, logits, deltas, anchors, sizes, original) -> list[dict]:
        """Each image's ``top_k`` predicted classes: their proposals re-scored and regressed by the R-CNN,
        the best one the class's box (its R-CNN score the box score)."""
        refined = []
        for i, o in enumerate(out):
            scores = o["class_scores"].clone()
            scores[0] = -1.0
            classes = scores.argsort(descending=True)[: self.top_k] - 1  # the RPN's 0-based class index
            classes = classes[classes >= 0]  # fewer than top_k classes: never the background
            boxes, owners = self.class_proposals(logits[i], deltas[i], anchors[i], classes, self.proposals_test,
                                                 sizes[i])
            class_logits, box_deltas = self.scores_and_deltas(features[i : i + 1], [boxes])
            own = F.softmax(class_logits, dim=1)[torch.arange(len(boxes)), owners + 1]
            regressed = self.box_coder.decode_single(box_deltas[torch.arange(len(boxes)), owners], boxes)
            regressed = _rescale(box_ops.clip_boxes_to_image(regressed, sizes[i]), sizes[i], original[i])
            o = {k: v.clone() for k, v in o.items()}
            for c in classes.tolist():
                mine = torch.where(owners == c)[0]
                if len(mine):
                    pick = mine[own[mine].argmax()]
                    o["boxes"][c + 1], o["box_scores"][c + 1] = regressed[pick], own[pick]
            refined.append(o)
        return refined


def rpn_decode(rpn: PerClassRPN, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """The RPN's regressed boxes of ``anchors`` (its own box coder)."""
    return rpn.box_coder.decode_single(deltas, anchors)


def build_rcnn_stage(rpn: PerClassRPN, *, roi_output_size: int = 14, proposals_train: int = 200,
                     proposals_test: int = 200, rois_per_image: int = 64, top_k: int = 5) -> RCNNStage:
    """The R-CNN stage on a trained ``rpn``: its head is a copy of the RPN's conv5_x (the classification
    head's, trained on the same trunk) and global average pooling, C4-style as the detector's; the fc
    layers are new (initialised from the global torch seed)."""
    conv5 = copy.deepcopy(rpn.classifier[0])
    for p in conv5.parameters():
        p.requires_grad_(True)
    width = rpn.classifier[1].in_features
    return RCNNStage(rpn, conv5, width, roi_output_size=roi_output_size, proposals_train=proposals_train,
                     proposals_test=proposals_test, rois_per_image=rois_per_image, top_k=top_k)
