"""The per-class RPN localizer (appendix C): per-class outputs per anchor, 8 sampled anchors per image,
each class's box from its best anchor, and ILSVRC's localization errors."""

from __future__ import annotations

import pytest
import torch

from resnetlib.detection.config import DetectorConfig
from resnetlib.localization.evaluate import localization_errors
from resnetlib.localization.model import PerClassRPN, build_localizer

SMALL = {"min_size": 64, "max_size": 64, "anchor_sizes": (16.0, 32.0), "aspect_ratios": (0.5, 1.0, 2.0)}


def localizer(num_classes=4) -> PerClassRPN:
    torch.manual_seed(0)
    return build_localizer("resnet18", num_classes, in_channels=1, batchnorm="train", **SMALL)


def test_outputs_are_per_class_and_per_anchor():
    model = localizer()
    features = model.trunk(torch.zeros(2, 1, 64, 64))
    logits, deltas = model.head(features)
    positions = features.shape[-2] * features.shape[-1]
    assert logits.shape == (2, positions * 6, 3) and deltas.shape == (2, positions * 6, 3, 4)  # 2 sizes x 3 ratios


def test_training_returns_finite_losses_that_fall(canvases, train_steps):
    before, after = train_steps(localizer().train(), *canvases, {"loss_objectness", "loss_rpn_box_reg", "loss_classifier"})
    assert after < before


def test_each_class_box_is_its_best_anchors_regressed_box(canvases):
    model = localizer().eval()
    images, _ = canvases
    with torch.no_grad():
        out = model(images)
        features = model.trunk(model.transform(images)[0].tensors)
        logits, deltas = model.head(features)
    assert len(out) == 2 and out[0]["boxes"].shape == (4, 4) and out[0]["class_scores"].shape == (4,)
    assert out[0]["class_scores"][0] == 0 and torch.isclose(out[0]["class_scores"].sum(), torch.tensor(1.0))
    best = logits[0, :, 1].argmax()
    assert torch.isclose(out[0]["box_scores"][2], torch.sigmoid(logits[0, best, 1]))
    assert (out[0]["boxes"] >= 0).all() and (out[0]["boxes"] <= 64).all()


def test_only_resnets_and_only_with_localization_data():
    with pytest.raises(ValueError, match="ResNet"):
        build_localizer("vgg_c4", 4, **SMALL)
    with pytest.raises(ValueError, match="per_class_rpn"):
        DetectorConfig.model_validate({"data": {"name": "loc_scenes"}})
    with pytest.raises(ValueError, match="faster_rcnn"):
        DetectorConfig.model_validate({"model": {"head": "per_class_rpn"}})


def test_localization_errors_follow_ilsvrcs_rule():
    gt = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([2])}
    good_box, bad_box = torch.tensor([0.0, 0.0, 10.0, 9.0]), torch.tensor([5.0, 5.0, 15.0, 15.0])

    def output(scores, box_of_class_2):
        boxes = torch.zeros(7, 4)
        boxes[2] = box_of_class_2
        return {"class_scores": torch.tensor(scores), "boxes": boxes}

    outputs = [
        output([0, 0.1, 0.5, 0.1, 0.1, 0.1, 0.1], good_box),   # right class at top-1, right box
        output([0, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1], good_box),   # right class at top-2 only
        output([0, 0.1, 0.5, 0.1, 0.1, 0.1, 0.1], bad_box),    # right class, IoU 0.14
        output([0, 0.02, 0.01, 0.3, 0.3, 0.2, 0.17], good_box),  # class 2 not in the top 5 (background excluded)
    ]
    errors = localization_errors(outputs, [gt] * 4)
    assert errors == {"cls_top1": 50.0, "cls_top5": 25.0, "loc_gt_class": 25.0, "loc_top1": 75.0,
                      "loc_top5": 50.0, "images": 4}


def test_sampled_positives_overlap_the_box_and_negatives_do_not(canvases):
    model = localizer().train()
    images, targets = canvases
    batch_ = model.transform(images, [dict(t) for t in targets])
    features = model.trunk(batch_[0].tensors)
    anchors = model.anchor_generator(batch_[0], [features])[0]
    from torchvision.ops import box_iou

    iou = box_iou(batch_[1][0]["boxes"], anchors)[0]
    pos, neg = model.sample(model.matcher(iou[None]))
    assert 1 <= len(pos) <= 4 and len(pos) + len(neg) == 8  # 8 anchors, at most half positive
    assert (iou[pos] >= iou.max() - 1e-6).any() and (iou[pos] > 0.3).all()
    assert (iou[neg] < 0.3).all()
