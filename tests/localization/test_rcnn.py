"""The R-CNN stage of appendix C ("RPN + RCNN"): trained on the fixed RPN's proposals, it re-scores and
regresses the predicted classes' boxes and leaves everything else as the RPN had it."""

from __future__ import annotations

import torch

from resnetlib.localization.model import build_localizer
from resnetlib.localization.rcnn import RCNNStage, build_rcnn_stage

SMALL = {"min_size": 64, "max_size": 64, "anchor_sizes": (16.0, 32.0), "aspect_ratios": (0.5, 1.0, 2.0)}


def stage(num_classes=7, top_k=2) -> RCNNStage:
    torch.manual_seed(0)
    rpn = build_localizer("resnet18", num_classes, in_channels=1, batchnorm="train", **SMALL)
    return build_rcnn_stage(rpn, roi_output_size=7, proposals_train=16, proposals_test=4, rois_per_image=8,
                            top_k=top_k)



def test_only_the_rcnn_head_trains_and_its_losses_fall(canvases, train_steps):
    model = stage().train()
    assert not model.rpn.training and not any(p.requires_grad for p in model.rpn.parameters())
    rpn_before = {k: v.clone() for k, v in model.rpn.state_dict().items()}
    before, after = train_steps(model, *canvases, {"loss_classifier", "loss_box_reg"})
    assert after < before
    assert all(torch.equal(v, model.rpn.state_dict()[k]) for k, v in rpn_before.items())  # BN stats too


def test_the_predicted_classes_boxes_are_refined_the_rest_are_the_rpns(canvases):
    model = stage(top_k=2).eval()
    images, _ = canvases
    with torch.no_grad():
        rpn_out, out = model.rpn(images), model(images)
    for r, o in zip(rpn_out, out):
        assert torch.equal(r["class_scores"], o["class_scores"])
        scores = r["class_scores"].clone()
        scores[0] = -1
        top = set(scores.argsort(descending=True)[:2].tolist())
        changed = {c for c in range(len(r["boxes"])) if not torch.equal(r["boxes"][c], o["boxes"][c])}
        assert changed and changed <= top  # only the top-2 classes' boxes move
        assert all(0 < float(o["box_scores"][c]) < 1 for c in top)  # the R-CNN's softmax score of the class
        assert (o["boxes"] >= 0).all() and (o["boxes"] <= 64).all()


def test_each_class_proposal_is_that_classs_regressed_anchor_without_duplicates(canvases):
    model = stage().eval()
    images, _ = canvases
    with torch.no_grad():
        b = model.rpn.transform(images)[0]
        features = model.rpn.trunk(b.tensors)
        logits, deltas = model.rpn.head(features)
        anchors = model.rpn.anchor_generator(b, [features])
        boxes, owners = model.class_proposals(logits[0], deltas[0], anchors[0], torch.tensor([1, 4]), 4,
                                              b.image_sizes[0])
    assert owners.tolist().count(1) <= 4 and set(owners.tolist()) == {1, 4}
    best = logits[0, :, 1].argmax()
    first = model.rpn.box_coder.decode_single(deltas[0, best : best + 1, 1], anchors[0][best : best + 1])
    assert torch.allclose(boxes[owners == 1][0], first.clamp(0, 64))  # the class's best anchor comes first
    from torchvision.ops import box_iou

    same = box_iou(boxes[owners == 1], boxes[owners == 1])
    assert (same.triu(1) <= 0.7).all()  # NMS at 0.7
