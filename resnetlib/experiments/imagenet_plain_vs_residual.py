"""Fig. 4 and Table 2: plain-18/34 against ResNet-18/34 on ImageNet-style class folders.

The paper's claims (Sec. 4.1): the 34-layer *plain* net has higher training (and validation) error
than the 18-layer one, the degradation problem (Fig. 4 left); with identity shortcuts (option A) the
34-layer ResNet has lower error than the 18-layer one (Fig. 4 right) and beats plain-34 (Table 2, 10-crop
top-1 validation error).

At the paper's scale the nets train on ILSVRC2012 class folders (``data_root/train``, ``data_root/val``)
with the Sec. 3.4 protocol. The CPU profiles train on a small data set written as class folders with
``resnetlib.data.export_image_folder`` (Fashion-MNIST at 32 px standing in for ImageNet), through the
same ImageNet pipeline: scale augmentation, random crop and flip, 10-crop testing.

This module also holds what the class-folder experiments share (``ImageFolderParams``,
``class_folders``, ``imagefolder_config``); ``shortcut_options`` (Table 3) uses them too.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, field_validator, model_validator

from .. import data as datasets
from .. import paper
from ..data.common import resolve_root
from ..models.imagenet import CONFIGS
from ..report.verdicts import compare_number
from ..train import TrainConfig, cached_fit
from ..train.loop import RunResult
from .base import Claim, write_results
from .training import TrainingParams, final_errors, final_value, statement_claims, trained_enough

PROTOCOL = paper.IMAGENET_PROTOCOL
#: ILSVRC2012 training images: a property of the data set (used for epochs when train_size is None).
IMAGENET_TRAIN_IMAGES = 1_281_167
#: Full-size training sets of the small data sets that can be exported as class folders.
_TRAIN_IMAGES = {"fashion_mnist": 60_000, "cifar10": 50_000, "synthetic": 512}
#: Table 2 is single-model 10-crop top-1 error; a re-implementation lands within about a point.
TABLE2_TOLERANCE = 1.0

ClassFolderData = Literal["imagefolder", "fashion_mnist", "cifar10", "synthetic"]


class ImageFolderParams(TrainingParams):
    """The Sec. 3.4 ImageNet protocol on class folders, scaled by the profile (defaults: a smoke run).

    ``dataset: imagefolder`` reads ``data_root/train`` and ``data_root/val`` (ILSVRC2012 for the paper);
    any other data set is first exported to class folders under ``<runs_dir>/exports/`` as a stand-in.
    """

    dataset: ClassFolderData = Field(
        "fashion_mnist",
        description="imagefolder = class folders train/ and val/ at data_root (ImageNet); otherwise that "
        "data set exported as class folders (a CPU stand-in)",
    )
    image_size: int = Field(32, ge=8, description="side of the exported images (stand-ins only)")
    scale: tuple[int, int] = Field((32, 40), description="shorter side resized into this range; paper: (256, 480)")
    crop: int = Field(32, ge=8, description="training and test crop; paper: 224")
    ten_crop: bool = Field(True, description="Table 2: 10-crop testing")
    workers: int = Field(0, ge=0, description="DataLoader workers decoding the images")
    eval_batch_size: int = Field(128, ge=1, description="images per evaluation batch (each 10 crops)")
    # Smoke defaults smaller than TrainingParams': the ImageNet nets cost more per image at 32 px than the
    # CIFAR nets, and a 10-crop evaluation costs ten forward passes per image.
    batch_size: int = Field(32, ge=1, description="paper: 256")
    test_size: int | None = Field(64, ge=1, description="None = the whole val/ folder")
    eval_every: int = Field(8, ge=1, description="iterations between points of the curves")

    @field_validator("scale")
    @classmethod
    def _scale_ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError(f"scale must be (low, high) with 1 <= low <= high, got {v}")
        return v

    def uses_class_folders(self) -> bool:
        """Whether this run trains on class folders (a subclass may also train CIFAR-style nets)."""
        return True

    @model_validator(mode="after")
    def _class_folder_settings(self):
        if not self.uses_class_folders():
            return self
        if self.crop > self.scale[0]:
            raise ValueError(f"crop {self.crop} is larger than the smallest shorter side {self.scale[0]} of scale")
        if self.val_size:
            raise ValueError("class-folder runs test on val/ (Table 2 reports ILSVRC val); val_size must be 0")
        return self

    def train_images(self) -> int:
        if self.train_size:
            return self.train_size
        return IMAGENET_TRAIN_IMAGES if self.dataset == "imagefolder" else _TRAIN_IMAGES[self.dataset]

    def epochs(self) -> float:
        return self.iterations * self.batch_size / self.train_images()

    def imagenet_at_paper_scale(self) -> bool:
        """True when the run is the paper's ImageNet protocol (Sec. 3.4) on the full class folders."""
        return (
            self.dataset == "imagefolder"
            and self.train_size is None
            and self.test_size is None
            and self.iterations >= PROTOCOL["iterations"]
            and self.batch_size == PROTOCOL["batch_size"]
            and tuple(self.scale) == tuple(PROTOCOL["scale_range"])
            and self.crop == PROTOCOL["crop"]
            and self.ten_crop
        )

    def data_text(self) -> str:
        if self.dataset == "imagefolder":
            return "ImageNet-style class folders at data_root"
        return f"{self.dataset} class folders at {self.image_size} px standing in for ImageNet"

    def imagefolder_scale_text(self) -> str:
        n = self.train_size or ("all" if self.dataset == "imagefolder" else self.train_images())
        return (
            f"{self.data_text()}: {n} train images, {self.iterations} iterations of batch {self.batch_size} "
            f"({self.epochs():.1f} epochs), lr steps at {self.milestones}, scale {tuple(self.scale)}, "
            f"crop {self.crop}, {'10-crop' if self.ten_crop else 'centre-crop'} test"
        )


def class_folders(params: ImageFolderParams) -> Path:
    """The folder holding ``train/`` and ``val/``: ``data_root`` for ImageNet, else an (idempotent) export."""
    if params.dataset == "imagefolder":
        root = resolve_root(params.data_root)
        datasets.imagenet_folders(root)  # a missing folder fails here, naming the expected layout
        return root
    sizes = f"train{params.train_size or 'all'}-val{params.test_size or 'all'}"
    root = params.runs_path() / "exports" / f"{params.dataset}-{params.image_size}px-{sizes}"
    small = datasets.load(params.dataset, params.data_root or None, train_size=params.train_size,
                          test_size=params.test_size, seed=0)
    return datasets.export_image_folder(small, root, image_size=params.image_size)


def folder_source(params: ImageFolderParams, root: Path) -> str:
    """Where the images came from, for results.json."""
    if params.dataset == "imagefolder":
        return str(root)
    marker = json.loads((root / "export.json").read_text())
    return f"{root}, exported from {marker['source']}"


def imagefolder_config(params: ImageFolderParams, model: str, seed: int, root: Path, **model_options) -> TrainConfig:
    """The engine configuration for training ``model`` on the class folders at ``root``."""
    export = params.dataset != "imagefolder"  # an export already holds exactly the chosen subsets
    return TrainConfig.model_validate({
        "model": {"name": model, **model_options},
        "data": {"name": "imagefolder", "root": str(root),
                 "train_size": None if export else params.train_size,
                 "test_size": None if export else params.test_size,
                 "scale": list(params.scale), "crop": params.crop, "ten_crop": params.ten_crop,
                 "workers": params.workers},
        "optim": {"batch_size": params.batch_size, "iterations": params.iterations, "milestones": params.milestones,
                  "lr": params.lr, "weight_decay": params.weight_decay, "warmup": {"mode": "off"}},
        "seed": seed,
        "device": params.device,
        "amp": params.amp,
        "threads": params.threads,
        "eval_every": params.eval_every,
        "eval_batch_size": params.eval_batch_size,
        "checkpoint_every": max(params.eval_every, min(params.iterations, 2000)),
        "log": "lines",
    })


def train_imagefolder(params: ImageFolderParams, model: str, seed: int, root: Path, **model_options) -> RunResult:
    """Train (or fetch from the run cache) ``model`` on the class folders at ``root``."""
    config = imagefolder_config(params, model, seed, root, **model_options)
    return cached_fit(config, params.runs_path(), force=params.force)


# --------------------------------------------------------------------------------------- this experiment
class Params(ImageFolderParams):
    depths: list[int] = Field(default_factory=lambda: [18, 34], min_length=1, description="Table 1 depths")

    @field_validator("depths")
    @classmethod
    def _valid_depths(cls, v: list[int]) -> list[int]:
        bad = [d for d in v if d not in CONFIGS]
        if bad:
            raise ValueError(f"ImageNet nets have depths {sorted(CONFIGS)} (Table 1); got {bad}")
        return sorted(set(v))

    def at_paper_scale(self) -> bool:
        return self.imagenet_at_paper_scale()

    def scale_text(self) -> str:
        return self.imagefolder_scale_text()


def train_all(params: Params, root: Path) -> pd.DataFrame:
    """Train plain and residual (option A) nets of every depth and seed; one row per evaluation."""
    rows = []
    for depth in params.depths:
        for kind in ("plain", "resnet"):
            for seed in params.seeds:
                result = train_imagefolder(params, f"{kind}{depth}", seed, root)
                speed = _median_speed(result)
                for m in result.metrics:
                    rows.append({"kind": kind, "depth": depth, "seed": seed, "run_dir": str(result.run_dir),
                                 "train_images_per_s": speed, **m})
    return pd.DataFrame(rows)


def _median_speed(result: RunResult) -> float:
    speeds = [m["images_per_s"] for m in result.metrics]
    return float(pd.Series(speeds).median()) if speeds else float("nan")


def claims_from(params: Params, final: pd.DataFrame) -> list[Claim]:
    shallow, deep = min(params.depths), max(params.depths)
    measurable, why = trained_enough(params, params.depths)
    v = partial(final_value, final)
    claims = statement_claims([
        ("fig4_plain_degradation", "Fig. 4 left",
         f"plain-{deep} has higher training error than plain-{shallow}",
         v("plain", deep, "train_error") - v("plain", shallow, "train_error")),
        ("fig4_resnet_deeper_lower_train_error", "Fig. 4 right",
         f"ResNet-{deep} has lower training error than ResNet-{shallow}",
         v("resnet", shallow, "train_error") - v("resnet", deep, "train_error")),
        ("table2_resnet_beats_plain", "Table 2",
         f"ResNet-{deep} has lower validation error than plain-{deep}",
         v("plain", deep, "test_error") - v("resnet", deep, "test_error")),
    ], measurable=measurable, why=why)
    for depth in params.depths:
        for kind in ("plain", "resnet"):
            key = f"table2.top1.{kind}{depth}"
            if key not in paper.REPORTED:
                continue
            ours = v(kind, depth, "test_error")
            verdict, reason = compare_number(ours, paper.value(key), at_paper_scale=params.at_paper_scale(),
                                             tolerance=TABLE2_TOLERANCE)
            label = f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"
            claims.append(Claim(id=f"table2_{kind}{depth}_top1", ref="Table 2",
                                what=f"{label} top-1 validation error, mean of {len(params.seeds)} seed(s) (%)",
                                ours=round(ours, 2), paper=paper.value(key), verdict=verdict, reason=reason))
    return claims


def run(params: Params) -> dict:
    start = time.perf_counter()
    root = class_folders(params)
    curves = train_all(params, root)
    final = final_errors(curves)
    speed = curves.groupby(["kind", "depth"], as_index=False)["train_images_per_s"].median()
    final = final.merge(speed, on=["kind", "depth"])
    out = params.out_path()
    curves.to_csv(out / "curves.csv", index=False)
    final.to_csv(out / "final_errors.csv", index=False)
    return write_results(
        params, dataset=f"{params.dataset} class folders" if params.dataset != "imagefolder" else "imagefolder",
        data_source=folder_source(params, root), scale=params.scale_text(), seeds=params.seeds,
        claims=claims_from(params, final), wall_seconds=time.perf_counter() - start,
        extra={"stand_in": params.dataset != "imagefolder", "data": params.data_text()},
    )
