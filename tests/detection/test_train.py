"""The training loop: seeded batches, determinism, and a tiny end-to-end run on the scene set."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from resnetlib.detection import (
    CocoDetectionDataset,
    build_detector,
    collate,
    evaluate_detector,
    make_scene_dataset,
    train_detector,
)
from resnetlib.detection.train import _batch_indices, _lr_at

TINY = {
    "min_size": 64,
    "max_size": 64,
    "anchor_sizes": (16, 32, 48),
    "in_channels": 1,
    "batchnorm": "train",
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 100,
    "rpn_pre_nms_top_n_test": 100,
    "rpn_post_nms_top_n_test": 20,
    "box_batch_size_per_image": 16,
}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    paths = make_scene_dataset(
        root, num_train=24, num_test=8, canvas=64, items_per_image=(1, 2), scale_range=(0.8, 1.2), seed=0
    )
    return (
        CocoDetectionDataset(paths["images"], paths["train"], mode="L"),
        CocoDetectionDataset(paths["images"], paths["test"], mode="L"),
    )


def test_batches_walk_seeded_epoch_permutations():
    n, bs = 10, 4
    seen = [i for it in range(5) for i in _batch_indices(n, bs, it, seed=3)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert _batch_indices(n, bs, 2, seed=3) == _batch_indices(n, bs, 2, seed=3)
    assert seen[:10] != [i for it in range(3) for i in _batch_indices(n, bs, it, seed=4)][:10]


def test_lr_schedule():
    assert _lr_at(0, 0.1, [5], 0.1, warmup=0) == pytest.approx(0.1)
    assert _lr_at(5, 0.1, [5], 0.1, warmup=0) == pytest.approx(0.01)
    assert _lr_at(0, 0.1, [], 0.1, warmup=10) == pytest.approx(1e-4)
    assert _lr_at(10, 0.1, [], 0.1, warmup=10) == pytest.approx(0.1)


def _train(scenes, seed, iterations=3):
    torch.manual_seed(seed)
    model = build_detector("resnet18", scenes[0].num_classes, roi_output_size=6, **TINY)
    log = train_detector(
        model,
        scenes[0],
        iterations=iterations,
        batch_size=2,
        lr=0.01,
        device="cpu",
        seed=seed,
        log_every=1,
        progress=False,
    )
    return model, log


@pytest.mark.slow
def test_deterministic_on_cpu(scenes, capsys):
    _, a = _train(scenes, seed=5)
    _, b = _train(scenes, seed=5)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in a]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in b]
    assert [row["iteration"] for row in a] == [1, 2, 3]
    assert set(a[0]) >= {
        "loss",
        "loss_classifier",
        "loss_box_reg",
        "loss_objectness",
        "loss_rpn_box_reg",
        "lr",
    }
    assert "iter 3/3" in capsys.readouterr().out  # one printed line per log step off a terminal


def test_non_finite_loss_raises(scenes):
    torch.manual_seed(0)
    model = build_detector("vgg_small", scenes[0].num_classes, **TINY)
    with pytest.raises(FloatingPointError, match="loss is"):
        train_detector(model, scenes[0], iterations=3, batch_size=2, lr=1.0e12, device="cpu", progress=False)


@pytest.mark.slow
def test_end_to_end_train_and_evaluate_on_scenes(scenes):
    model, log = _train(scenes, seed=0, iterations=12)
    assert all(math.isfinite(row["loss"]) for row in log)
    assert log[-1]["loss"] < log[0]["loss"]
    metrics = evaluate_detector(model, DataLoader(scenes[1], batch_size=4, collate_fn=collate), "cpu")
    for key in ("coco_map", "coco_map50", "voc07_map", "voc_map"):
        assert math.isfinite(metrics[key]) and 0.0 <= metrics[key] <= 100.0, (key, metrics[key])
    assert metrics["num_images"] == 8
