"""Appendix C, Tables 13 and 14: ImageNet localization with a per-class RPN on a ResNet.

The paper fine-tunes an ImageNet ResNet-101 as a per-class RPN (``resnetlib.localization.model``) and
reports, on ImageNet val: the localization error with the ground-truth class 13.3% (centre crop) and
11.7% (dense, fully-convolutional testing), the top-5 localization error with the classes a classifier
predicts 14.4% (RPN alone), 10.6% (RPN + R-CNN), 8.9% (ensemble); 9.0% on the test set (Table 14).

Here: per seed, the localizer of ``train`` (a partial ``DetectorConfig`` with ``model.head: per_class_rpn``
and localization data) is fine-tuned from a backbone pretrained once (``data_seed``) and tested fully
convolutionally on whole images; then its R-CNN stage (``resnetlib.localization.rcnn``; ``rcnn``: its
settings over ``train``'s, ``model.head: per_class_rcnn``) is trained on that RPN's proposals, the RPN
fixed, and refines the top-5 predicted classes' boxes. The ensemble (``resnetlib.localization.ensemble``)
combines every seed's outputs of a stage. The errors are ILSVRC's (``resnetlib.localization.evaluate``),
per stage: ``rpn``, ``rpn_rcnn`` (per seed, table ``errors``) and their ensembles (table ``ensemble``).
The CPU profiles use Fashion-MNIST canvases written in the ILSVRC CLS-LOC layout, so the same reader
serves the paper profile's ImageNet. The paper's numbers are compared only at its scale (ImageNet,
ResNet-101; the ensemble rows with at least two members); whether the R-CNN stage lowers the top-5
localization error is a statement judged at every scale (per seed, paired with the seed's RPN).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator
from torch.utils.data import DataLoader, Subset

from ..config import deep_merge
from ..detection.config import LOCALIZATION_DATA, DetectorConfig
from ..detection.data import collate, open_datasets
from ..detection.evaluate import predict
from ..detection.train import DetectorRun, cached_detector
from ..devices import resolve_device
from ..localization.ensemble import ensemble_outputs
from ..localization.evaluate import localization_errors
from ..localization.rcnn import RCNNStage, build_rcnn_stage
from ..train.loop import seed_everything
from . import detection
from .. import paper
from ..claims import NOT_MEASURABLE, Claim, Gate, difference_se, number_claim, statement_claim
from ..claims.rules import (
    LOCALIZER_MAX_GT_ERROR,
    MARGIN_LOCALIZATION_STAGE,
    MIN_ENSEMBLE_MEMBERS,
)
from ..claims.rules import TOLERANCE_DETECTION as NUMBER_TOLERANCE
from .base import Measured, Outcome, run_experiment
from .fine_tuning import FineTuningParams, pretrained_backbone
from .declaration import Experiment

__all__ = ["SMOKE_RCNN", "SMOKE_TRAIN", "Params", "claims", "measure", "run"]

#: The smoke scale (seconds on 2 cores): over ``DetectorConfig``'s defaults, beneath a params file's train:.
SMOKE_TRAIN: dict[str, Any] = {
    "model": {"head": "per_class_rpn", "batchnorm": "train", "min_size": 64, "max_size": 64,
              "anchor_sizes": [16.0, 32.0, 64.0], "aspect_ratios": [0.5, 1.0, 2.0]},
    "data": {"name": "loc_scenes", "num_train_per_class": 8, "num_val": 20, "canvas": 64, "scale_range": [1.0, 2.0]},
    "optim": {"batch_size": 8, "lr": 0.02, "iterations": 6, "milestones": [],
              "warmup": {"mode": "linear", "iterations": 2}},
    "log_every": 2,
}
#: The R-CNN stage's smoke settings, over the localizer's ``train`` (and beneath a params file's rcnn:):
#: RoIs of 7x7 on the 4x4 C4 map of a 64 px canvas, 16 proposals per training image (16 sampled), 8 per
#: predicted class at test (the paper: 200 and 200).
SMOKE_RCNN: dict[str, Any] = {
    "model": {"roi_output_size": 7, "rois_per_image": 16, "rpn_post_nms_train": 16, "rpn_post_nms_test": 8},
}
#: What the R-CNN stage's params may not set: the data and backbone are the localizer's, seed and device top-level.
RCNN_FIXED = {"seed", "device", "data"}
RCNN_FIXED_MODEL = {"name", "head", "pretrained", "pretrained_sha256", "resnet", "batchnorm", "freeze_at",
                    "min_size", "max_size", "anchor_sizes", "aspect_ratios"}
#: The localization stages, in the order of Table 13: the RPN alone, RPN + R-CNN.
STAGES = ("rpn", "rpn_rcnn")
#: Classes the R-CNN stage refines: the top-5 the classifier predicts (ILSVRC's top-5 rule; the paper).
TOP_K = 5
#: The metrics of the table, in percent (``localization_errors``).
METRICS = ("cls_top1", "cls_top5", "loc_gt_class", "loc_top1", "loc_top5")
#: The paper's numbers beside ours, per seed: (registry key, our stage, our metric); ours is dense testing.
#: RPN + R-CNN has no true-class row (the paper's Table 13 neither: the stage refines predicted classes).
PAPER_ROWS = (("table13.loc_err_gt.rpn_dense", "rpn", "loc_gt_class"),
              ("table13.top5_loc_err.rpn_dense", "rpn", "loc_top5"),
              ("table13.top5_loc_err.rpn_rcnn_dense", "rpn_rcnn", "loc_top5"))
#: ... and of the ensemble of the seeds' RPN + R-CNN (Table 13's last row; Table 14's val number).
ENSEMBLE_ROWS = (("table13.top5_loc_err.ensemble", "rpn_rcnn", "loc_top5"),
                 ("table14.top5_loc_err.ours_val", "rpn_rcnn", "loc_top5"))
#: The statement Table 13's second row makes about the first.
STAGE_STATEMENT = "the R-CNN stage lowers the RPN's top-5 localization error (points)"


class Params(FineTuningParams):
    """One ResNet backbone, pretrained once, fine-tuned as a per-class RPN with several seeds."""

    train: dict[str, Any] = Field(
        default_factory=dict, validate_default=True,
        description="localizer training settings (keys of resnetlib.detection.config.DetectorConfig, with "
        "model.head per_class_rpn and localization data), over the smoke defaults",
    )
    rcnn: dict[str, Any] = Field(
        default_factory=dict, validate_default=True,
        description="the R-CNN stage's settings over train's (model.roi_output_size, model.rois_per_image, "
        "model.rpn_post_nms_train / rpn_post_nms_test = proposals per training image / per class at test, optim, "
        "log_every), over the smoke defaults",
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

    @field_validator("rcnn", mode="before")
    @classmethod
    def _rcnn_over_smoke(cls, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"rcnn must be a mapping of DetectorConfig keys, got {type(value).__name__}")
        fixed = sorted(RCNN_FIXED & set(value)) + [f"model.{k}" for k in sorted(RCNN_FIXED_MODEL & set(value.get("model", {})))]
        if fixed:
            raise ValueError(f"rcnn.{fixed[0]} is the localizer's (train:) or the experiment's: the R-CNN stage "
                             "shares the RPN's data, backbone and image sizes")
        return deep_merge(SMOKE_RCNN, value)

    @model_validator(mode="after")
    def _rcnn_validates(self) -> Params:
        self.rcnn_config(self.seeds[0] if self.seeds else 0)  # errors named rcnn.<key>
        return self

    def config(self, seed: int, pretrained: str = "") -> DetectorConfig:
        """The localizer's configuration for ``seed`` (what the run cache keys its training by)."""
        return _config(self.train, self.backbone, seed, self.device, self.data_root, pretrained,
                       detection.content_hash(pretrained))

    def rcnn_config(self, seed: int, rpn_checkpoint: str = "") -> DetectorConfig:
        """The R-CNN stage's configuration for ``seed``: ``rcnn`` over ``train``, keyed by the trained RPN's
        checkpoint (its path and content hash), so a retrained RPN retrains its stage."""
        merged = deep_merge(deep_merge(self.train, self.rcnn), {"model": {"head": "per_class_rcnn"}})
        return _config(merged, self.backbone, seed, self.device, self.data_root, rpn_checkpoint,
                       detection.content_hash(rpn_checkpoint))


def _config(train: dict[str, Any], backbone: str, seed: int, device: str, root: str, pretrained: str = "",
            sha: str = "") -> DetectorConfig:
    top = {"model": {"name": backbone, "pretrained": pretrained, "pretrained_sha256": sha}, "seed": seed,
           "device": device, "data": {"root": root}}
    defaults = DetectorConfig().model_dump()
    defaults.pop("data")
    return DetectorConfig.model_validate(deep_merge(deep_merge(defaults, train), top))


def rcnn_stage(config: DetectorConfig, rpn: torch.nn.Module) -> RCNNStage:
    """The R-CNN stage of ``config`` on the trained ``rpn``, its new layers initialised from ``config.seed``."""
    seed_everything(config.seed)
    m = config.model
    return build_rcnn_stage(rpn, roi_output_size=m.roi_output_size, proposals_train=m.rpn_post_nms_train,
                            proposals_test=m.rpn_post_nms_test, rois_per_image=m.rois_per_image, top_k=TOP_K)


def _row(seed: int, stage: str, outputs: list, targets: list, run: DetectorRun) -> dict[str, Any]:
    """One row of the errors table; the R-CNN stage's true-class error is not defined (NaN): it refines
    the predicted classes' boxes only."""
    errors = localization_errors(outputs, targets, top_k=TOP_K)
    if stage == "rpn_rcnn":
        errors["loc_gt_class"] = math.nan
    print(f"seed {seed}, {stage}: " + ", ".join(f"{k} {errors[k]:.1f}%" for k in METRICS), flush=True)
    return {"seed": seed, "stage": stage, **errors, "train_seconds": round(run.train_seconds, 1),
            "run_dir": str(run.run_dir)}


def _ensemble_rows(members: dict[str, list[list]], targets: list) -> list[dict[str, Any]]:
    """Per stage, the errors of the ensemble of every seed's outputs (``localization.ensemble``)."""
    rows = []
    for stage, outputs in members.items():
        errors = localization_errors(ensemble_outputs(outputs), targets, top_k=TOP_K)
        if stage == "rpn_rcnn":
            errors["loc_gt_class"] = math.nan
        rows.append({"stage": stage, "members": len(outputs), **errors})
    return rows


def measure(params: Params) -> Measured:
    """Per seed: fine-tune (or reuse) the localizer, then its R-CNN stage; predict every val image with
    each, score ILSVRC's errors; then the ensembles of the seeds."""
    device = resolve_device(params.device)
    checkpoint, pretraining = pretrained_backbone(params)
    first = params.config(params.seeds[0], checkpoint)
    train_ds, val_ds, info = open_datasets(first.data, params.data_seed, params.runs_path() / "detection")
    if params.max_test_images and params.max_test_images < len(val_ds):
        val_ds = Subset(val_ds, range(params.max_test_images))
    loader = DataLoader(val_ds, batch_size=params.eval_batch_size, collate_fn=collate)
    rows, curves, members = [], [], {stage: [] for stage in STAGES}
    for seed in params.seeds:
        config = params.config(seed, checkpoint)
        model = detection.build_for(config, info)
        run = cached_detector(config, model, train_ds, params.runs_path(), force=params.force)
        outputs, targets = predict(model.to(device), loader, device)
        stage_config = params.rcnn_config(seed, str(run.checkpoint))
        stage = rcnn_stage(stage_config, model)
        stage_run = cached_detector(stage_config, stage, train_ds, params.runs_path(), force=params.force)
        refined, _ = predict(stage.to(device), loader, device)
        rows += [_row(seed, "rpn", outputs, targets, run), _row(seed, "rpn_rcnn", refined, targets, stage_run)]
        members["rpn"].append(outputs)
        members["rpn_rcnn"].append(refined)
        curves.extend({"seed": seed, "stage": "rpn", **r} for r in run.log)
        curves.extend({"seed": seed, "stage": "rpn_rcnn", **r} for r in stage_run.log)
    o, r = first.optim, params.rcnn_config(params.seeds[0])
    return Measured(
        tables={"errors": pd.DataFrame(rows), "ensemble": pd.DataFrame(_ensemble_rows(members, targets)),
                "curves": pd.DataFrame(curves)},
        dataset=info.label, data_source=info.source,
        scale=(f"{len(train_ds)} train / {len(val_ds)} val images, RPN {o.iterations} iterations x {o.batch_size} "
               f"images, R-CNN {r.optim.iterations} x {r.optim.batch_size}, {params.backbone}, "
               f"{len(params.seeds)} seed(s)"),
        seeds=list(params.seeds),
        extra={"pretraining": pretraining, "classes": info.classes[1:]},
        scratch={"at_paper_scale": first.data.name == "ilsvrc_loc" and params.backbone == "resnet101"
                 and bool(params.pretrained)},
    )


def _paper_claims(errors: pd.DataFrame, at_paper_scale: bool) -> list[Claim]:
    """The per-seed rows of Table 13 beside ours (mean over seeds, their spread widening the tolerance)."""
    out = []
    for key, stage, metric in PAPER_ROWS:
        values = errors.loc[errors.stage == stage, metric].tolist()
        spread = statistics.stdev(values) if len(values) >= 2 else None
        out.append(number_claim(key, statistics.fmean(values), at_paper_scale=at_paper_scale,
                                tolerance=NUMBER_TOLERANCE, spread=spread, n_seeds=len(values)))
    return out


def _ensemble_claims(ensemble: pd.DataFrame, at_paper_scale: bool) -> list[Claim]:
    """Tables 13/14's ensemble rows beside our ensemble of the seeds (compared with >= 2 members only)."""
    out = []
    for key, stage, metric in ENSEMBLE_ROWS:
        row = ensemble.loc[ensemble.stage == stage].iloc[0]
        enough = int(row["members"]) >= MIN_ENSEMBLE_MEMBERS
        claim = number_claim(key, float(row[metric]), at_paper_scale=at_paper_scale and enough,
                             tolerance=NUMBER_TOLERANCE, n_seeds=int(row["members"]))
        if at_paper_scale and not enough:
            claim = claim.model_copy(update={"verdict": NOT_MEASURABLE, "reason": (
                f"an ensemble of {int(row['members'])} localizer(s): the paper's needs >= {MIN_ENSEMBLE_MEMBERS}")})
        out.append(claim)
    return out


def _stage_claim(errors: pd.DataFrame, at_paper_scale: bool) -> Claim:
    """Table 13, "RPN" -> "RPN+RCNN": per seed, the RPN's top-5 localization error minus its R-CNN stage's
    (positive: the paper's direction), gated on an RPN that localizes at all."""
    rpn = errors[errors.stage == "rpn"].set_index("seed")
    rcnn = errors[errors.stage == "rpn_rcnn"].set_index("seed")
    effects = (rpn.loc_top5 - rcnn.loc_top5).tolist()
    images = int(rpn.images.iloc[0])
    se = difference_se((float(rpn.loc_top5.iloc[0]), images), (float(rcnn.loc_top5.iloc[0]), images))
    gt_error = float(rpn.loc_gt_class.mean())
    gate = Gate(gt_error <= LOCALIZER_MAX_GT_ERROR,
                f"the RPN has not learnt to localize: localization error with the true class {gt_error:.1f}% "
                f"> {LOCALIZER_MAX_GT_ERROR:g}%")
    paper_step = paper.value("table13.top5_loc_err.rpn_dense") - paper.value("table13.top5_loc_err.rpn_rcnn_dense")
    return statement_claim("table13_rcnn_lowers_top5_loc_err", "Appendix C, Table 13", STAGE_STATEMENT, effects,
                           margin=MARGIN_LOCALIZATION_STAGE, gates=[gate], sampling_se=se, paper=round(paper_step, 2),
                           at_paper_scale=at_paper_scale)


def claims(params: Params, measured: Measured) -> list[Claim]:
    """Table 13's rows (paper scale only), its ensemble rows, and the R-CNN stage's step as a statement."""
    at_scale = measured.scratch["at_paper_scale"]
    errors = measured.tables["errors"]
    out = _paper_claims(errors, at_scale)
    if "ensemble" in measured.tables:
        out += _ensemble_claims(measured.tables["ensemble"], at_scale)
    return [*out, _stage_claim(errors, at_scale)]


def run(params: Params) -> Outcome:
    """Fine-tune the localizer and its R-CNN stage per seed, score them and their ensembles, write
    results.json, errors.csv, ensemble.csv, curves.csv."""
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, claims=claims)
