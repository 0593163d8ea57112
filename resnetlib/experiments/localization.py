"""Appendix C, Tables 13 and 14: ImageNet localization with a per-class RPN on a ResNet.

The paper fine-tunes an ImageNet ResNet-101 as a per-class RPN (``resnetlib.localization.model``) and
reports, on ImageNet val: the localization error with the ground-truth class 13.3% (centre crop) and
11.7% (dense, fully-convolutional testing), the top-5 localization error with the classes a classifier
predicts 14.4% (RPN alone), 10.6% (RPN + R-CNN), 8.9% (ensemble); 9.0% on the test set (Table 14).

Here: per seed, the localizer of ``train`` (a partial ``DetectorConfig`` with ``model.head: per_class_rpn``
and localization data) is fine-tuned from a backbone pretrained once (``data_seed``) and tested fully
convolutionally on whole images; the errors are ILSVRC's (``resnetlib.localization.evaluate``). The CPU
profiles use Fashion-MNIST canvases written in the ILSVRC CLS-LOC layout, so the same reader serves the
paper profile's ImageNet. The paper's numbers are compared only at its scale (ImageNet, ResNet-101);
the RPN + R-CNN and ensemble rows are listed, not built.
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd
from pydantic import Field, field_validator
from torch.utils.data import DataLoader, Subset

from ..config import deep_merge
from ..detection.config import LOCALIZATION_DATA, DetectorConfig
from ..detection.data import collate, open_datasets
from ..detection.evaluate import predict
from ..detection.train import cached_detector
from ..devices import resolve_device
from ..localization.evaluate import localization_errors
from . import detection
from ..claims import Claim, number_claim
from ..claims.rules import TOLERANCE_DETECTION as NUMBER_TOLERANCE
from .base import Measured, Outcome, run_experiment
from .fine_tuning import FineTuningParams, pretrained_backbone
from .declaration import Experiment

__all__ = ["SMOKE_TRAIN", "Params", "claims", "measure", "run"]

#: The smoke scale (seconds on 2 cores): over ``DetectorConfig``'s defaults, beneath a params file's train:.
SMOKE_TRAIN: dict[str, Any] = {
    "model": {"head": "per_class_rpn", "batchnorm": "train", "min_size": 64, "max_size": 64,
              "anchor_sizes": [16.0, 32.0, 64.0], "aspect_ratios": [0.5, 1.0, 2.0]},
    "data": {"name": "loc_scenes", "num_train_per_class": 8, "num_val": 20, "canvas": 64, "scale_range": [1.0, 2.0]},
    "optim": {"batch_size": 8, "lr": 0.02, "iterations": 6, "milestones": [],
              "warmup": {"mode": "linear", "iterations": 2}},
    "log_every": 2,
}
#: The metrics of the table, in percent (``localization_errors``).
METRICS = ("cls_top1", "cls_top5", "loc_gt_class", "loc_top1", "loc_top5")
#: The paper's numbers beside ours: (registry key, our metric). Ours is dense (fully-convolutional) testing.
PAPER_ROWS = (("table13.loc_err_gt.rpn_dense", "loc_gt_class"), ("table13.top5_loc_err.rpn_dense", "loc_top5"))


class Params(FineTuningParams):
    """One ResNet backbone, pretrained once, fine-tuned as a per-class RPN with several seeds."""

    train: dict[str, Any] = Field(
        default_factory=dict, validate_default=True,
        description="localizer training settings (keys of resnetlib.detection.config.DetectorConfig, with "
        "model.head per_class_rpn and localization data), over the smoke defaults",
    )
    max_test_images: int = Field(0, ge=0, description="evaluate on the first N val images only (0 = all)")
    eval_batch_size: int = Field(16, ge=1)

    @field_validator("train", mode="before")
    @classmethod
    def _over_smoke(cls, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"train must be a mapping of DetectorConfig keys, got {type(value).__name__}")
        merged = deep_merge(SMOKE_TRAIN, value)
        if value.get("data", {}).get("name", "loc_scenes") != "loc_scenes":
            merged["data"] = dict(value["data"])
        for key in ("seed", "device"):
            if key in value:
                raise ValueError(f"'{key}' is not a train setting here: set {key} at the top level")
        if merged["data"].get("name") not in LOCALIZATION_DATA:
            raise ValueError(f"train.data.name must be one of {LOCALIZATION_DATA}, got {merged['data'].get('name')!r}")
        _config(merged, "resnet18", 0, "auto", "")  # errors named train.<key>
        return merged

    def config(self, seed: int, pretrained: str = "") -> DetectorConfig:
        """The localizer's configuration for ``seed`` (what the run cache keys its training by)."""
        return _config(self.train, self.backbone, seed, self.device, self.data_root, pretrained,
                       detection.content_hash(pretrained))


def _config(train: dict[str, Any], backbone: str, seed: int, device: str, root: str, pretrained: str = "",
            sha: str = "") -> DetectorConfig:
    top = {"model": {"name": backbone, "pretrained": pretrained, "pretrained_sha256": sha}, "seed": seed,
           "device": device, "data": {"root": root}}
    defaults = DetectorConfig().model_dump()
    defaults.pop("data")
    return DetectorConfig.model_validate(deep_merge(deep_merge(defaults, train), top))


def measure(params: Params) -> Measured:
    """Per seed: fine-tune (or reuse) the localizer, predict every val image, score ILSVRC's errors."""
    device = resolve_device(params.device)
    checkpoint, pretraining = pretrained_backbone(params)
    first = params.config(params.seeds[0], checkpoint)
    train_ds, val_ds, info = open_datasets(first.data, params.data_seed, params.runs_path() / "detection")
    if params.max_test_images and params.max_test_images < len(val_ds):
        val_ds = Subset(val_ds, range(params.max_test_images))
    loader = DataLoader(val_ds, batch_size=params.eval_batch_size, collate_fn=collate)
    rows, curves = [], []
    for seed in params.seeds:
        config = params.config(seed, checkpoint)
        model = detection.build_for(config, info)
        run = cached_detector(config, model, train_ds, params.runs_path(), force=params.force)
        outputs, targets = predict(model.to(device), loader, device)
        errors = localization_errors(outputs, targets)
        print(f"seed {seed}: " + ", ".join(f"{k} {errors[k]:.1f}%" for k in METRICS), flush=True)
        rows.append({"seed": seed, **errors, "train_seconds": round(run.train_seconds, 1)})
        curves.extend({"seed": seed, **r} for r in run.log)
    o = first.optim
    return Measured(
        tables={"errors": pd.DataFrame(rows), "curves": pd.DataFrame(curves)},
        dataset=info.label, data_source=info.source,
        scale=(f"{len(train_ds)} train / {len(val_ds)} val images, {o.iterations} iterations x {o.batch_size} "
               f"images, {params.backbone}, {len(params.seeds)} seed(s)"),
        seeds=list(params.seeds),
        extra={"pretraining": pretraining, "classes": info.classes[1:]},
        scratch={"at_paper_scale": first.data.name == "ilsvrc_loc" and params.backbone == "resnet101"
                 and bool(params.pretrained)},
    )


def claims(params: Params, measured: Measured) -> list[Claim]:
    errors = measured.tables["errors"]
    out = []
    for key, metric in PAPER_ROWS:
        values = errors[metric].tolist()
        spread = statistics.stdev(values) if len(values) >= 2 else None
        claim = number_claim(key, statistics.fmean(values), at_paper_scale=measured.scratch["at_paper_scale"],
                             tolerance=NUMBER_TOLERANCE, spread=spread, n_seeds=len(values))
        out.append(claim)
    return out


def run(params: Params) -> Outcome:
    """Fine-tune the localizer per seed, score it, write results.json, errors.csv, curves.csv."""
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, claims=claims)
