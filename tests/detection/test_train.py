"""The training loop: seeded batches, the shared lr schedule, determinism, resume, a tiny run on scenes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from resnetlib.config import load_yaml, validate
from resnetlib.detection import (
    CocoDetectionDataset,
    build_detector,
    collate,
    evaluate_detector,
    make_scene_dataset,
    train_detector,
)
from resnetlib.detection.config import DetectorConfig
from resnetlib.detection.model import RESNETS
from resnetlib.detection.train import _batch_indices, cached_detector
from resnetlib.experiments import detection as exp
from resnetlib.paths import PARAMS_DIR
from resnetlib.train import seed_everything
from resnetlib.train.config import OptimConfig
from resnetlib.train.schedule import learning_rate

TINY_MODEL = {
    "min_size": 64,
    "max_size": 64,
    "anchor_sizes": [16, 32, 48],
    "batchnorm": "train",
    "rpn_pre_nms_train": 200,
    "rpn_post_nms_train": 100,
    "rpn_pre_nms_test": 100,
    "rpn_post_nms_test": 20,
    "rois_per_image": 16,
}


def tiny(backbone="resnet18", seed=0, iterations=3, lr=0.01, **top) -> DetectorConfig:
    model = {
        "name": backbone,
        **TINY_MODEL,
        "roi_output_size": 6,
        "resnet": {} if backbone in RESNETS else None,
    }
    optim = {
        "batch_size": 2,
        "lr": lr,
        "iterations": iterations,
        "milestones": [],
        "warmup": {"mode": "linear", "iterations": 0},
    }
    return DetectorConfig(
        model=model, data={"name": "scenes"}, optim=optim, seed=seed, device="cpu", **{"log_every": 1, **top}
    )


def build(config: DetectorConfig, num_classes: int) -> torch.nn.Module:
    seed_everything(config.seed)
    return build_detector(config.model.name, num_classes, in_channels=1, **config.model.build_options())


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


def test_lr_schedule_is_the_engines_with_a_linear_warmup():
    def lr(it, **optim):
        return learning_rate(it, OptimConfig(**{"lr": 0.1, "lr_decay": 0.1, **optim}), warmup_done=True)

    no_warmup = {"milestones": [5], "warmup": {"mode": "linear", "iterations": 0}}
    assert lr(0, **no_warmup) == pytest.approx(0.1)
    assert lr(5, **no_warmup) == pytest.approx(0.01)
    warmup = {"milestones": [], "warmup": {"mode": "linear", "iterations": 10}}
    assert lr(0, **warmup) == pytest.approx(1e-4)  # from lr/1000 ...
    assert lr(5, **warmup) == pytest.approx(0.1 * (0.001 * 0.5 + 0.5))  # ... linearly ...
    assert lr(10, **warmup) == pytest.approx(0.1)  # ... to lr
    # the detection profiles' values, bit for bit as the former detection-only schedule gave them
    smoke = {"lr": 0.02, "milestones": [100], "warmup": {"mode": "linear", "iterations": 2}}
    assert [lr(i, **smoke) for i in (0, 1, 2, 100)] == [
        0.02 * 0.001,
        0.02 * (0.001 * 0.5 + 0.5),
        0.02,
        0.02 * 0.1,
    ]


def _former_lr(iteration, lr, milestones, gamma, warmup):
    """detection/train.py's own schedule before it used the engine's (kept here as the reference)."""
    value = lr * gamma ** sum(iteration >= m for m in milestones)
    if warmup > 0 and iteration < warmup:
        alpha = iteration / warmup
        value *= 0.001 * (1 - alpha) + alpha
    return value


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_every_iterations_lr_is_bit_identical_to_the_former_schedule(profile):
    params = validate(exp.Params, load_yaml(PARAMS_DIR / "detection" / f"{profile}.yaml"))
    o = params.base_config().optim
    former = [_former_lr(i, o.lr, o.milestones, o.lr_decay, o.warmup.iterations) for i in range(o.iterations)]
    assert [learning_rate(i, o, warmup_done=True) for i in range(o.iterations)] == former


def _train(scenes, seed, iterations=3):
    config = tiny(seed=seed, iterations=iterations)
    model = build(config, scenes[0].num_classes)
    log = train_detector(model, scenes[0], config, progress=False)
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
    config = tiny("vgg_small", lr=1.0e12)
    with pytest.raises(FloatingPointError, match="loss is"):
        train_detector(build(config, scenes[0].num_classes), scenes[0], config, progress=False)


@pytest.mark.slow
def test_end_to_end_train_and_evaluate_on_scenes(scenes):
    model, log = _train(scenes, seed=0, iterations=12)
    assert all(math.isfinite(row["loss"]) for row in log)
    assert log[-1]["loss"] < log[0]["loss"]
    metrics = evaluate_detector(model, DataLoader(scenes[1], batch_size=4, collate_fn=collate), "cpu")
    for key in ("coco_map", "coco_map50", "voc07_map", "voc_map"):
        assert math.isfinite(metrics[key]) and 0.0 <= metrics[key] <= 100.0, (key, metrics[key])
    assert metrics["num_images"] == 8


class Crash(RuntimeError):
    pass


class CrashingSet(torch.utils.data.Dataset):
    """The training scenes, until image number ``crash_at`` is read: then the 'machine dies'."""

    def __init__(self, base, crash_at: int) -> None:
        self.base, self.reads, self.crash_at = base, 0, crash_at

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        self.reads += 1
        if self.reads > self.crash_at:
            raise Crash("killed")
        return self.base[index]


@pytest.mark.slow
def test_crashed_detector_run_resumes_bit_identical_and_finished_one_is_reused(scenes, tmp_path, capsys):
    config = tiny(iterations=4, checkpoint_every=2, log_every=2)
    reference = build(config, scenes[0].num_classes)
    ref = cached_detector(config, reference, scenes[0], tmp_path / "reference")
    with pytest.raises(Crash):  # dies in iteration 3 (2 images per iteration), after the checkpoint of 2
        cached_detector(
            config, build(config, scenes[0].num_classes), CrashingSet(scenes[0], 5), tmp_path / "runs"
        )
    (run_dir,) = (tmp_path / "runs" / "detection").iterdir()
    assert (run_dir / "checkpoints" / "last.pt").is_file() and not (run_dir / "summary.json").exists()
    resumed_model = build(config, scenes[0].num_classes)
    resumed = cached_detector(config, resumed_model, scenes[0], tmp_path / "runs")
    assert resumed.run_dir == run_dir and not resumed.cached
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.log]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in ref.log]
    for (name, a), b in zip(reference.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    again_model = build(config, scenes[0].num_classes)
    again = cached_detector(config, again_model, scenes[0], tmp_path / "runs")
    assert again.cached and again.log == resumed.log and "reusing the trained run" in capsys.readouterr().out
    assert all(
        torch.equal(a, b)
        for a, b in zip(again_model.state_dict().values(), resumed_model.state_dict().values())
    )
    forced = cached_detector(
        config, build(config, scenes[0].num_classes), scenes[0], tmp_path / "runs", force=True
    )
    assert not forced.cached and len(list((tmp_path / "runs" / "detection").glob("*.replaced-*"))) == 1
