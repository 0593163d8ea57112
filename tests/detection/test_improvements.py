"""Appendix A's improvements as options of the detector: global context, box refinement with voting,
multi-scale testing (two adjacent pyramid scales, maxout) and multi-scale training."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from resnetlib.detection.context import ContextHead, WithContext, context_predictor, has_global_context
from resnetlib.detection.inference import (
    ImprovedInference,
    InferenceOptions,
    box_voting,
    inference_macs,
    refined_boxes,
)
from resnetlib.detection.model import build_detector, count_macs
from resnetlib.detection.multiscale import (
    PAPER_TEST_SCALES,
    MultiScaleTrainingTransform,
    pyramid_pool,
    two_adjacent_scales,
)

from .test_model import SMALL, small_batch


def detector(**options):
    torch.manual_seed(0)
    return build_detector("resnet18", 3, batchnorm="train", roi_output_size=8, **SMALL, **options).eval()


def same_detections(a, b):
    return all(
        torch.equal(x["labels"], y["labels"]) and torch.allclose(x["boxes"], y["boxes"], atol=1e-4)
        and torch.allclose(x["scores"], y["scores"], atol=1e-5)
        for x, y in zip(a, b, strict=True)
    )


def test_without_options_the_wrapper_detects_exactly_as_the_detector():
    model = detector()
    images, _ = small_batch()
    with torch.no_grad():
        expected = model(images)
    got = ImprovedInference(model, InferenceOptions()).eval()(images)
    assert sum(len(d["boxes"]) for d in expected) > 0
    assert same_detections(got, expected)


def test_two_adjacent_scales_pick_the_nearest_area_and_its_nearer_neighbour():
    scales = (0.5, 1.0, 2.0)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0],   # area 100: target 100 at scale 1, then 0.5 (25) vs 2 (400)
                          [0.0, 0.0, 40.0, 40.0],   # 1600: best scale 0.5 (400 -> |300|), neighbour 1.0
                          [0.0, 0.0, 2.0, 2.0]])    # 4: best 2.0 (16), only neighbour 1.0
    pairs = two_adjacent_scales(boxes, scales, 100.0)
    assert pairs.tolist() == [[1, 0], [0, 1], [2, 1]]


def test_pyramid_pool_at_one_scale_is_the_models_roi_align():
    torch.manual_seed(0)
    fmap = torch.randn(2, 4, 8, 8)  # stride 16 on 128 px images
    boxes = [torch.tensor([[8.0, 8.0, 60.0, 90.0]]), torch.tensor([[0.0, 0.0, 128.0, 128.0], [30.0, 40.0, 50.0, 70.0]])]
    pool = MultiScaleRoIAlign(["0"], output_size=4, sampling_ratio=2)
    expected = pool({"0": fmap}, boxes, [(128, 128), (128, 128)])
    got = pyramid_pool([fmap], boxes, [(128, 128)] * 2, (128, 128), (1.0,), output_size=4, sampling_ratio=2,
                       target_side=0.4)
    assert torch.allclose(got, expected, atol=1e-6)


def test_box_voting_averages_overlapping_boxes_of_the_same_class_by_score():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [0.0, 0.0, 10.0, 10.0],
                          [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.6, 0.2, 0.9, 0.5])
    labels = torch.tensor([1, 1, 2, 1])
    voted = box_voting(boxes[:1], labels[:1], boxes, scores, labels, iou=0.5)
    expected = (0.6 * boxes[0] + 0.2 * boxes[1]) / 0.8  # not the class-2 box, not the far one
    assert torch.allclose(voted[0], expected)


def test_refined_boxes_take_each_proposals_top_class_box():
    model = detector()
    heads = model.roi_heads
    proposals = [torch.tensor([[10.0, 10.0, 30.0, 30.0], [0.0, 0.0, 20.0, 40.0]])]
    logits = torch.tensor([[5.0, 0.0, 1.0], [9.0, 2.0, 0.0]])  # top object class: 2, then 1 (not background)
    deltas = torch.zeros(2, 12)
    deltas[0, 8:] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # class 2 of the first proposal moves right by 0.1 x 20
    out = refined_boxes(heads, logits, deltas, proposals, [(64, 64)])[0]
    assert torch.allclose(out[0], torch.tensor([12.0, 10.0, 32.0, 30.0]), atol=1e-4)
    assert torch.allclose(out[1], proposals[0][1])


def test_refinement_and_multiscale_testing_give_valid_detections_and_cost_more():
    model = detector()
    images, _ = small_batch()
    for options in (InferenceOptions(box_refinement=True), InferenceOptions(test_scales=PAPER_TEST_SCALES),
                    InferenceOptions(box_refinement=True, test_scales=PAPER_TEST_SCALES)):
        out = ImprovedInference(model, options).eval()(images)
        for d in out:
            assert len(d["boxes"]) <= model.roi_heads.detections_per_img
            assert (d["boxes"][:, 2:] >= d["boxes"][:, :2]).all() and d["boxes"].min() >= 0
            assert d["boxes"].max() <= 64 and ((d["scores"] > 0) & (d["scores"] <= 1)).all()
    base = inference_macs(model, 64, InferenceOptions(), 3)
    assert base == pytest.approx(count_macs(model, 64, 3)["test_macs"])
    assert inference_macs(model, 64, InferenceOptions(box_refinement=True), 3) > base
    assert inference_macs(model, 64, InferenceOptions(test_scales=PAPER_TEST_SCALES), 3) > base


def test_counting_the_cost_leaves_the_model_as_it_was():
    """Counting multiply-adds runs the nets on zero images: in eval mode, so a model left in training mode
    (as ``evaluate_detector`` leaves it) keeps its batch-norm statistics and its mode (issue 22)."""
    model = detector().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inference_macs(model, 64, InferenceOptions(box_refinement=True, test_scales=PAPER_TEST_SCALES), 3)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_options_are_checked():
    with pytest.raises(ValueError, match=r"include 1\.0"):
        InferenceOptions(test_scales=(0.5, 2.0))
    with pytest.raises(ValueError, match="vote_iou"):
        InferenceOptions(vote_iou=0.0)
    with pytest.raises(RuntimeError, match="eval"):
        ImprovedInference(detector(), InferenceOptions()).train()(small_batch()[0])


def test_global_context_joins_each_images_feature_to_its_rois():
    flatten = torch.nn.Flatten()
    flatten.out_channels = 2
    head = ContextHead(flatten)
    rois, images = torch.arange(6.0).reshape(3, 2, 1, 1), torch.tensor([[[[10.0]], [[20.0]]], [[[30.0]], [[40.0]]]])
    out = head(WithContext(rois, images, [1, 2]))
    assert out.tolist() == [[0, 1, 10, 20], [2, 3, 30, 40], [4, 5, 30, 40]]


def test_detector_with_global_context_trains_detects_and_counts_its_cost():
    plain, model = detector(), detector(global_context=True)
    assert has_global_context(model) and not has_global_context(plain)
    assert model.roi_heads.box_predictor.cls_score.in_features == 2 * plain.roi_heads.box_predictor.cls_score.in_features
    images, targets = small_batch()
    losses = model.train()(images, targets)
    assert set(losses) >= {"loss_classifier", "loss_box_reg"} and all(torch.isfinite(v) for v in losses.values())
    with torch.no_grad():
        out = model.eval()(images)
    assert len(out) == 2
    ours, theirs = count_macs(model, 64, 3), count_macs(plain, 64, 3)
    assert ours["context_macs"] > 0 and theirs["context_macs"] == 0
    # the same conv5_x per RoI, a wider predictor, and conv5_x once more per image
    assert ours["test_macs"] - theirs["test_macs"] == pytest.approx(
        ours["context_macs"] + ours["test_rois"] * (ours["head_macs_per_roi"] - theirs["head_macs_per_roi"]))
    assert ImprovedInference(model, InferenceOptions(box_refinement=True, test_scales=(0.5, 1.0))).eval()(images)


def test_the_context_predictor_starts_as_the_baseline_predictor_and_learns_the_context():
    """At initialisation the predictor on [per-RoI, whole-image] features gives every RoI the baseline
    predictor's class scores and box deltas, whatever its image's feature; the context weights get a gradient."""
    torch.manual_seed(0)
    baseline = FastRCNNPredictor(16, 4)
    joined = context_predictor(baseline)
    per_roi, per_image = torch.randn(5, 16), torch.randn(5, 16) * 100
    for ours, theirs in zip(joined(torch.cat([per_roi, per_image], 1)), baseline(per_roi), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-6)
    scores, deltas = joined(torch.cat([per_roi, per_image], 1))
    (scores.logsumexp(1) - scores[:, 1]).sum().backward()
    assert joined.cls_score.weight.grad[:, 16:].abs().sum() > 0


def test_the_detector_with_global_context_starts_as_the_baseline_detector():
    """Built from the same seed, the detector with context and the baseline detect the same boxes, classes and
    scores before training: the context is added by training, not by the initialisation."""
    plain, model = detector(), detector(global_context=True)
    width = plain.roi_heads.box_predictor.cls_score.in_features
    assert torch.equal(model.roi_heads.box_predictor.cls_score.weight[:, :width],
                       plain.roi_heads.box_predictor.cls_score.weight)
    images, _ = small_batch()
    with torch.no_grad():
        expected = plain(images)
        got = model(images)
    assert sum(len(d["boxes"]) for d in expected) > 0
    assert same_detections(got, expected)


def test_multiscale_training_draws_the_training_side_and_tests_at_min_size():
    model = detector(train_min_sizes=(48, 80))
    assert isinstance(model.transform, MultiScaleTrainingTransform)
    images, targets = small_batch()
    torch.manual_seed(1)
    sides = {model.transform.train()(images[:1], [dict(targets[0])])[0].image_sizes[0][0] for _ in range(12)}
    assert sides == {48, 64}  # 80 is capped by max_size 64 on square images
    assert model.transform.eval()(images[:1])[0].image_sizes[0] == (64, 64)
    with pytest.raises(ValueError, match="positive"):
        MultiScaleTrainingTransform([], 64, 64, [0.5] * 3, [0.2] * 3)
