"""Appendix A, Table 9: box refinement, global context and multi-scale testing on top of Faster R-CNN.

The paper adds three things to its ResNet-101 Faster R-CNN for the COCO competition, each on top of the
previous (Table 9, COCO val, mAP@.5 / mAP@[.5,.95]): baseline 48.4 / 27.2 (Table 8), + box refinement
49.9 / 29.9, + context 51.1 / 30.0, + multi-scale testing 53.8 / 32.5. Its text: box refinement "improves
mAP by about 2 points", global context "improves mAP@.5 by about 1 point", multi-scale testing "improves
the mAP by over 2 points". The same three make up "baseline+++" of Tables 10-12 (with COCO data added for
VOC), so those tables' gains are not the improvements' alone and are only listed.

This experiment trains, per seed and at one budget, the baseline detector of ``experiments/detection``
(``backbone``, the same ``train`` section), the same detector with global context (trained end to end,
as the paper) and, as our addition, with multi-scale training (the paper did not train at several scales);
it tests them with and without box refinement and multi-scale testing (``resnetlib.detection.inference``).
Every variant is scored on the same test images, paired by seed with the baseline, beside its multiply-adds
per test image. The backbone is pretrained once (``data_seed``), as the paper fine-tunes one ImageNet
model, and the scene set is drawn once from ``data_seed`` too: the seeds vary the detector's training.

Claims: each of Table 9's steps (on the metric the paper's text names) raises our detector's accuracy,
judged from the per-seed gains by the shared seed-and-interval rules, once both detectors of the step (the
variant before it and the one after) pass the detector gate (``claims.detector_gate``: a minimum mAP@.5
and a classifier that is not constant).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import Field, field_validator

from .. import paper
from ..detection.config import DetectorConfig
from ..detection.data import open_datasets
from ..detection.evaluate import class_ap_table, predict
from ..detection.inference import ImprovedInference, InferenceOptions, inference_macs
from ..detection.model import count_macs
from ..detection.multiscale import PAPER_TEST_SCALES
from ..detection.train import cached_detector
from ..devices import resolve_device
from . import detection
from ..claims import Claim, Gate, class_fraction, detector_gate, statement_claim
from ..claims.rules import DETECTOR_MIN_ITERATIONS, DETECTOR_MIN_TEST_IMAGES
from ..claims.rules import MARGIN_TABLE9_STEP as CLAIM_MARGIN
from .base import Measured, Outcome, run_experiment
from .fine_tuning import FineTuningParams, pretrained_backbone
from .declaration import Experiment

__all__ = ["DETECTORS", "STEPS", "VARIANTS", "Params", "claims", "measure", "run"]

#: The detectors trained per seed: name -> what differs from the baseline's configuration.
DETECTORS = ("baseline", "context", "multiscale_training")


@dataclass(frozen=True)
class Variant:
    """One row of the table: a trained detector tested with some options."""

    name: str
    detector: str
    box_refinement: bool = False
    multiscale_testing: bool = False


#: Table 9's rows in order (each adds to the one above), then each improvement alone, then ours.
VARIANTS = (
    Variant("baseline", "baseline"),
    Variant("+box refinement", "baseline", box_refinement=True),
    Variant("+box refinement +context", "context", box_refinement=True),
    Variant("+box refinement +context +multi-scale testing", "context", True, True),
    Variant("context alone", "context"),
    Variant("multi-scale testing alone", "baseline", multiscale_testing=True),
    Variant("multi-scale training (ours, not in the paper)", "multiscale_training"),
)


@dataclass(frozen=True)
class Step:
    """A step of Table 9: the variant before and after it, the metric the paper's text names, its row."""

    id: str
    what: str
    before: str
    after: str
    metric: str
    paper_row: str


STEPS = (
    Step("table9_box_refinement", "box refinement raises COCO mAP@[.5,.95]", "baseline", "+box refinement",
         "coco_map", "box_refinement"),
    Step("table9_context", "global context raises COCO mAP@.5 (on top of box refinement)", "+box refinement",
         "+box refinement +context", "coco_map50", "context"),
    Step("table9_multiscale_testing", "multi-scale testing raises COCO mAP@[.5,.95] (on top of both)",
         "+box refinement +context", "+box refinement +context +multi-scale testing", "coco_map",
         "multiscale_testing"),
)


class Params(FineTuningParams):
    """The detection experiment's training section, one backbone pretrained once, several seeds, and the
    scales of multi-scale training and testing."""

    train: detection.DetectorSection = Field(
        default_factory=dict, validate_default=True,
        description="detector training settings (keys of resnetlib.detection.config.DetectorConfig), as in "
        "the detection notebook; a params file's train: is merged over its smoke defaults",
    )
    test_scales: list[float] = Field(
        default_factory=lambda: [round(s, 4) for s in PAPER_TEST_SCALES],
        description="multi-scale testing's pyramid, relative to the model's image size (paper: 200-1000 of 600)",
    )
    train_scales: list[float] = Field(
        default_factory=lambda: [0.75, 1.0, 1.25],
        description="multi-scale training's shorter sides, relative to model.min_size",
    )
    max_test_images: int = Field(0, ge=0, description="evaluate on the first N test images only (0 = all)")
    eval_batch_size: int = Field(4, ge=1)

    @field_validator("train", mode="before")
    @classmethod
    def _over_smoke(cls, value: Any) -> dict[str, Any]:
        return detection.Params.model_validate({"train": value or {}}).train

    @field_validator("test_scales", "train_scales")
    @classmethod
    def _scales(cls, v: list[float]) -> list[float]:
        if not v or min(v) <= 0 or 1.0 not in v:
            raise ValueError(f"scales must be positive and include 1.0 (the model's own size), got {v}")
        return sorted(v)

    def detection_params(self, seed: int) -> detection.Params:
        """The detection experiment's parameters for ``seed``: its translator makes the baseline config."""
        return detection.Params(
            profile=self.profile, output_dir=str(self.out_path()), runs_dir=self.runs_dir, data_root=self.data_root,
            device=self.device, force=self.force, backbones=[self.backbone],
            pretrained={self.backbone: self.pretrained} if self.pretrained else {}, pretrain=self.pretrain,
            seed=seed, train=self.train, max_test_images=self.max_test_images,
            eval_batch_size=self.eval_batch_size,
        )

    def detector_configs(self, seed: int, checkpoint: str) -> dict[str, DetectorConfig]:
        """The baseline's configuration for ``seed`` (fine-tuned from ``checkpoint``) and its two variants."""
        base = detection.detector_config(self.detection_params(seed), self.backbone, checkpoint)
        m = base.model
        sides = sorted({round(m.min_size * s) for s in self.train_scales})
        multiscale = m.model_copy(update={"train_min_sizes": sides, "max_size": max(m.max_size, round(
            m.max_size * max(self.train_scales)))})
        return {
            "baseline": base,
            "context": base.model_copy(update={"model": m.model_copy(update={"global_context": True})}),
            "multiscale_training": base.model_copy(update={"model": multiscale}),
        }


def _test_options(params: Params, variant: Variant) -> InferenceOptions:
    scales = tuple(params.test_scales) if variant.multiscale_testing else ()
    return InferenceOptions(box_refinement=variant.box_refinement, test_scales=scales)


def measure(params: Params) -> Measured:
    """Per seed: train (or reuse) the three detectors, test each variant; one metrics row per (seed, variant),
    the per-class APs (``class_ap``), and the first seed's detections on the figure's images
    (``detections.json``, one row of the figure per variant)."""
    device = resolve_device(params.device)
    first = params.detection_params(params.data_seed)
    train_ds, test_ds, info = open_datasets(first.base_config().data, params.data_seed,
                                            params.runs_path() / "detection")
    test = detection.EvalSet(first, test_ds)
    checkpoint, pretraining = pretrained_backbone(params)
    rows, curves, class_ap, figure_dets = [], [], [], {}
    for seed in params.seeds:
        configs = params.detector_configs(seed, checkpoint)
        for name, config in configs.items():
            model = detection.build_for(config, info)
            run = cached_detector(config, model, train_ds, params.runs_path(), force=params.force)
            model.to(device)
            curves.extend({"seed": seed, "detector": name, **row} for row in run.log)
            cost = count_macs(model, config.model.min_size, info.in_channels)
            for variant in (v for v in VARIANTS if v.detector == name):
                row, m = _test(params, variant, model, test, device, info, seed, run, cost)
                rows.append(row)
                class_ap.extend(class_ap_table(m, info.classes, seed=seed, variant=variant.name))
                if seed == params.seeds[0]:
                    figure_dets[variant.name] = _figure_detections(params, variant, model, test, device)
    detection.write_detections(params.out_path() / "detections.json", test, _in_table_order(figure_dets), info)
    metrics = pd.DataFrame(rows)
    return Measured(
        tables={"metrics": metrics, "gains": gains(metrics), "curves": pd.DataFrame(curves),
                "class_ap": pd.DataFrame(_in_table_order_rows(class_ap))},
        dataset=info.label, data_source=info.source,
        scale=f"{detection.scale_text(first, train_ds, test.dataset)}; {params.backbone}, {len(params.seeds)} seed(s)",
        seeds=list(params.seeds),
        extra={"pretraining": pretraining, "test_scales": params.test_scales, "train_scales": params.train_scales,
               "protocol": _protocol(params, first)},
        scratch={"num_test": len(test.dataset), "iterations": first.iterations, "dataset": first.dataset},
    )


def _figure_detections(params: Params, variant: Variant, model, test, device) -> list[dict]:
    """``variant``'s detections on the figure's test images (the first seed's detector)."""
    return predict(ImprovedInference(model, _test_options(params, variant)), test.figure_loader, device)[0]


def _in_table_order(detections: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The variants' figure detections in Table 9's order (``VARIANTS``)."""
    return {v.name: detections[v.name] for v in VARIANTS if v.name in detections}


def _in_table_order_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-class AP rows by seed, then variant in Table 9's order (the order the report's columns take)."""
    order = {v.name: i for i, v in enumerate(VARIANTS)}
    return sorted(rows, key=lambda r: (r["seed"], order[r["variant"]]))


def _test(params: Params, variant: Variant, model, test, device, info, seed: int, run, cost):
    """(metrics row, ``evaluate_detector``'s metrics) of ``variant`` of ``seed``'s detector."""
    options = _test_options(params, variant)
    m, seconds = detection.evaluate_timed(ImprovedInference(model, options), test.loader, device)
    macs = inference_macs(model, model.transform.min_size[-1], options, info.in_channels)
    print(f"seed {seed} {variant.name}: COCO mAP {m['coco_map']:.2f}, mAP@.5 {m['coco_map50']:.2f} "
          f"({seconds:.0f}s)", flush=True)
    return {
        "seed": seed, "variant": variant.name, "detector": variant.detector,
        "box_refinement": variant.box_refinement, "multiscale_testing": variant.multiscale_testing,
        "coco_map": m["coco_map"], "coco_map50": m["coco_map50"], "voc07_map": m["voc07_map"],
        "class_fraction": class_fraction(m["voc07_ap"]),
        "test_macs": macs, "train_macs": cost["train_macs"], "train_seconds": round(run.train_seconds, 1),
        "eval_seconds": round(seconds, 1), "final_loss": run.log[-1]["loss"] if run.log else math.nan,
    }, m


def paired_gains(metrics: pd.DataFrame, before: str, after: str, metric: str) -> list[float]:
    """Per seed, ``after`` minus ``before`` on ``metric`` (seeds that have both)."""
    table = metrics.pivot(index="seed", columns="variant", values=metric)
    return (table[after] - table[before]).dropna().tolist()


def gains(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per variant: mean mAP@.5 and mAP over seeds, the mean gain over the baseline, the test cost ratio,
    and the paper's Table 9 gain over its baseline where the variant is one of Table 9's rows."""
    rows = []
    base = metrics[metrics.variant == "baseline"]
    for v in VARIANTS:
        part = metrics[metrics.variant == v.name]
        if part.empty:
            continue
        paper_row = next((s.paper_row for s in STEPS if s.after == v.name), None)
        rows.append({
            "variant": v.name, "seeds": len(part),
            "coco_map50": part.coco_map50.mean(), "coco_map": part.coco_map.mean(),
            "gain_map50": _mean(paired_gains(metrics, "baseline", v.name, "coco_map50")),
            "gain_map": _mean(paired_gains(metrics, "baseline", v.name, "coco_map")),
            "paper_gain_map50": _paper_gain(paper_row, "coco_map50"),
            "paper_gain_map": _paper_gain(paper_row, "coco_map"),
            "test_macs": part.test_macs.mean(), "test_macs_vs_baseline": part.test_macs.mean() / base.test_macs.mean(),
        })
    return pd.DataFrame(rows)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _paper_gain(row: str | None, metric: str) -> float | None:
    """Table 9's gain of ``row`` over the paper's baseline (Table 8's ResNet-101), in points."""
    if row is None:
        return None
    return round(paper.value(f"table9.{metric}.{row}") - paper.value(f"table8.{metric}.resnet101"), 1)


def _step_gain_in_paper(step: Step) -> float:
    """The paper's gain of ``step`` alone (its row minus the row above), in points."""
    rows = [s.paper_row for s in STEPS]
    i = rows.index(step.paper_row)
    before = (f"table9.{step.metric}.{rows[i - 1]}" if i else f"table8.{step.metric}.resnet101")
    return round(paper.value(f"table9.{step.metric}.{step.paper_row}") - paper.value(before), 1)


def _protocol(params: Params, first: detection.Params) -> list[str]:
    notes = detection.protocol_notes(first)
    notes.append("box refinement: proposals' regressed boxes (top class) pooled and scored again; union of both "
                 "passes, NMS at IoU 0.3, box voting at IoU 0.5 (as the paper, ref. [6])")
    notes.append(f"multi-scale testing: RPN at the model's scale; Fast R-CNN step on the pyramid "
                 f"{params.test_scales} x the image size, two adjacent scales per RoI merged by maxout (as the "
                 f"paper, ref. [33])")
    notes.append(f"multi-scale training (ours): shorter side drawn from {params.train_scales} x min_size")
    notes.append(f"one pretrained backbone and one scene set (seed {params.data_seed}) for every seed")
    return notes


def _scale_gate(num_test: int, iterations: int, dataset: str) -> Gate:
    """Is the run long enough, on enough test images, for a gain to be evidence?"""
    need = DETECTOR_MIN_ITERATIONS[dataset]
    if iterations < need or num_test < DETECTOR_MIN_TEST_IMAGES:
        return Gate(False, f"{iterations} iterations on {num_test} test images: needs >= {need} iterations and "
                           f">= {DETECTOR_MIN_TEST_IMAGES} test images")
    return Gate(True)


def variant_gate(metrics: pd.DataFrame, variant: str) -> Gate:
    """The detector gate of one variant, on its mean over seeds (mAP@.5, fraction of classes detected)."""
    part = metrics[metrics.variant == variant]
    fraction = part["class_fraction"].mean() if "class_fraction" in part else 1.0
    return detector_gate(f"'{variant}'", float(part.coco_map50.mean()), float(fraction))


def claims(params: Params, measured: Measured) -> list[Claim]:
    """Each step of Table 9, behind the scale's gate and the detector gate of both its detectors."""
    metrics, s = measured.tables["metrics"], measured.scratch
    scale = _scale_gate(s["num_test"], s["iterations"], s["dataset"])
    out = []
    for step in STEPS:
        effects = paired_gains(metrics, step.before, step.after, step.metric)
        gates = [variant_gate(metrics, step.before), variant_gate(metrics, step.after)]
        out.append(statement_claim(step.id, "Table 9", step.what, effects, margin=CLAIM_MARGIN, measurable=scale.ok,
                                   why=scale.reason, gates=gates, paper=_step_gain_in_paper(step)))
    return out


def run(params: Params) -> Outcome:
    """Train the detectors, test every variant, write results.json, metrics.csv, gains.csv, curves.csv."""
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, claims=claims)
