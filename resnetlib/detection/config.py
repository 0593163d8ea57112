"""The detector's training configuration (Sec. 4.3, appendix A): one typed object per trained detector.

Like ``resnetlib.train.TrainConfig`` for the classifiers, it holds everything that decides what a
trained detector computes, and the run cache (``resnetlib.train.runs``) hashes its whole dump: a new
setting is part of the key the moment it is a field here. Defaults are the paper's VOC protocol
(ref. [32]'s Faster R-CNN settings: 600 px images, 3 x 3 anchors, 128 RoIs per image, lr 0.001 for 60k
and 0.0001 for 20k mini-batches); the experiment's profiles name what differs.

The optimiser is the classifiers' ``OptimConfig`` (SGD, step schedule, ``resnetlib.train.schedule``);
detectors warm up ``linear``-ly from lr/1000 (torchvision's detection reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..config import StrictModel
from ..train.config import OptimConfig, WarmupConfig
from .model import BACKBONES, C4_HEADS, PAPER_ANCHOR_SIZES, PAPER_ASPECT_RATIOS, VGGS

__all__ = [
    "DatasetInfo",
    "LOCALIZATION_DATA",
    "LOCALIZER_HEADS",
    "CocoData",
    "DetectionData",
    "DetectorConfig",
    "DetectorModelConfig",
    "IlsvrcLocalizationData",
    "LocalizationScenesData",
    "ResNetOptions",
    "ScenesData",
    "VOCData",
]


class ResNetOptions(StrictModel):
    """What only a ResNet backbone has: its shortcut option (Sec. 3.3) and stride placement."""

    shortcut: Literal["A", "B", "C"] | None = Field(
        None, description="None = the net's default (A for 18/34 layers); B for torchvision checkpoints"
    )
    stride_in_1x1: bool = Field(
        True, description="bottleneck stride on the 1x1 (paper's models); False for torchvision's (v1.5)"
    )


class DetectorModelConfig(StrictModel):
    """The Faster R-CNN that ``build_detector`` builds: backbone, initialisation, anchors, RoIs, proposals."""

    name: str = Field("resnet101", description=f"backbone: {', '.join(BACKBONES)}")
    head: Literal["faster_rcnn", "per_class_rpn", "per_class_rcnn"] = Field(
        "faster_rcnn",
        description="faster_rcnn: a detector; per_class_rpn: appendix C's localizer (ResNets only); "
        "per_class_rcnn: appendix C's R-CNN stage on a trained per_class_rpn (pretrained: its checkpoint; "
        "rpn_post_nms_train / rpn_post_nms_test: proposals per training image / per class at test)",
    )
    pretrained: str = Field("", description="classification checkpoint loaded into the backbone; '' = none")
    pretrained_sha256: str = Field("", description="the checkpoint's content hash: a replaced file retrains")
    batchnorm: Literal["frozen", "train"] = Field(
        "frozen",
        description="frozen = the paper's fixed BN statistics (needs pretrained nets); train = from scratch",
    )
    freeze_at: int = Field(
        0, ge=0, le=2, description="fix conv1 (1) or conv1 + conv2_x (2) of pretrained nets"
    )
    min_size: int = Field(600, ge=16, description="shorter image side after resizing (paper: 600)")
    max_size: int = Field(1000, ge=16, description="longer image side cap (paper: 1000)")
    anchor_sizes: list[float] = Field(
        default_factory=lambda: list(map(float, PAPER_ANCHOR_SIZES)), description="paper: 128, 256, 512"
    )
    aspect_ratios: list[float] = Field(default_factory=lambda: list(PAPER_ASPECT_RATIOS))
    rois_per_image: int = Field(
        128, ge=1, description="RoIs sampled per image for the detector loss (paper: 128)"
    )
    rpn_pre_nms_train: int = Field(12_000, ge=1)
    rpn_post_nms_train: int = Field(2_000, ge=1)
    rpn_pre_nms_test: int = Field(6_000, ge=1)
    rpn_post_nms_test: int = Field(300, ge=1, description="proposals per test image (paper: 300)")
    roi_output_size: int = Field(
        14,
        ge=2,
        description="RoIAlign output before the conv stage per RoI of the C4 designs (ResNets' conv5_x, "
        "vgg_c4; paper: 14 -> 7x7); vgg16 and vgg_small take 7x7 into fc6",
    )
    resnet: ResNetOptions | None = Field(
        default_factory=ResNetOptions,
        description="ResNet backbones only; null for VGG",
    )
    global_context: bool = Field(
        False, description="appendix A: the whole image's pooled feature joined to each RoI's (Table 9: +context)"
    )
    train_min_sizes: list[int] = Field(
        default_factory=list,
        description="multi-scale training: shorter side drawn per training image from these ([] = min_size "
        "only); not in the paper's tables",
    )

    @field_validator("name")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        if v not in BACKBONES:
            raise ValueError(f"unknown detection backbone {v!r}; choose one of {', '.join(BACKBONES)}")
        return v

    @field_validator("train_min_sizes")
    @classmethod
    def _positive_sides(cls, v: list[int]) -> list[int]:
        if any(side < 16 for side in v):
            raise ValueError(f"train_min_sizes are image sides of at least 16 px, got {v}")
        return v

    @model_validator(mode="after")
    def _resnet_options_for_resnets_only(self) -> DetectorModelConfig:
        if (self.resnet is None) != (self.name in VGGS):
            raise ValueError(f"model.resnet must be {'null' if self.name in VGGS else 'set'} for {self.name}")
        if self.head in LOCALIZER_HEADS and (self.name in VGGS or self.global_context or self.train_min_sizes):
            raise ValueError("the per_class_rpn localizer (and its R-CNN stage) takes a ResNet backbone, without global_context or "
                             "train_min_sizes (detector options)")
        return self

    def localizer_options(self) -> dict[str, Any]:
        """Keyword arguments of ``resnetlib.localization.model.build_localizer`` (after name and classes)."""
        options = {k: v for k, v in self.build_options().items()
                   if k in ("min_size", "max_size", "anchor_sizes", "aspect_ratios", "pretrained", "batchnorm",
                            "freeze_at")}
        return {**options, **(self.resnet.model_dump() if self.resnet else {})}

    def build_options(self) -> dict[str, Any]:
        """Keyword arguments of ``build_detector`` (after the backbone name and the class count)."""
        options = {
            "min_size": self.min_size,
            "max_size": self.max_size,
            "anchor_sizes": self.anchor_sizes,
            "aspect_ratios": self.aspect_ratios,
            "pretrained": self.pretrained or None,
            "batchnorm": self.batchnorm,
            "freeze_at": self.freeze_at,
            "rpn_pre_nms_top_n_train": self.rpn_pre_nms_train,
            "rpn_post_nms_top_n_train": self.rpn_post_nms_train,
            "rpn_pre_nms_top_n_test": self.rpn_pre_nms_test,
            "rpn_post_nms_top_n_test": self.rpn_post_nms_test,
            "box_batch_size_per_image": self.rois_per_image,
            "global_context": self.global_context,
            "train_min_sizes": tuple(self.train_min_sizes),
        }
        if self.name in C4_HEADS:
            options["roi_output_size"] = self.roi_output_size
        return {**options, **(self.resnet.model_dump() if self.resnet else {})}


class ScenesData(StrictModel):
    """Fashion-MNIST scenes (``make_scene_dataset``): the CPU stand-in for COCO, drawn from ``seed``."""

    name: Literal["scenes"] = "scenes"
    root: str = Field("", description="where Fashion-MNIST is read from; '' = the default search path")
    num_train: int = Field(600, ge=1)
    num_test: int = Field(100, ge=1)
    canvas: int = Field(96, ge=32, description="scene side in pixels")
    items_per_image: tuple[int, int] = Field((2, 3), description="[min, max] items per scene")
    scale_range: tuple[float, float] = Field((1.0, 2.0), description="[lo, hi] factor on the 28 px items")

    @model_validator(mode="after")
    def _items_fit(self) -> ScenesData:
        if not 1 <= self.items_per_image[0] <= self.items_per_image[1]:
            raise ValueError(
                f"items_per_image must be [min, max] with 1 <= min <= max, got {self.items_per_image}"
            )
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be [lo, hi] with 0 < lo <= hi, got {self.scale_range}")
        if 28 * self.scale_range[1] > self.canvas:
            raise ValueError(f"items of 28*{self.scale_range[1]} px do not fit a {self.canvas} px canvas")
        return self


class LocalizationScenesData(StrictModel):
    """One Fashion-MNIST item per canvas, written in the ILSVRC CLS-LOC layout (``resnetlib.data.localization``):
    the CPU stand-in for ImageNet localization (appendix C), drawn from ``seed``."""

    name: Literal["loc_scenes"] = "loc_scenes"
    root: str = Field("", description="where Fashion-MNIST is read from; '' = the default search path")
    num_train_per_class: int = Field(60, ge=1)
    num_val: int = Field(100, ge=1)
    canvas: int = Field(64, ge=32, description="canvas side in pixels")
    scale_range: tuple[float, float] = Field((1.0, 2.0), description="[lo, hi] factor on the 28 px item")

    @model_validator(mode="after")
    def _item_fits(self) -> LocalizationScenesData:
        if not 0 < self.scale_range[0] <= self.scale_range[1] or 28 * self.scale_range[1] > self.canvas:
            raise ValueError(f"scale_range must be [lo, hi] with 0 < lo <= hi and 28*hi <= canvas ({self.canvas}), "
                             f"got {self.scale_range}")
        return self


class IlsvrcLocalizationData(StrictModel):
    """ImageNet localization (ILSVRC CLS-LOC): train on train (images with boxes), test on val (Tables 13-14)."""

    name: Literal["ilsvrc_loc"] = "ilsvrc_loc"
    root: str = Field("", description="folder holding ILSVRC/ and LOC_synset_mapping.txt; '' = the default search path")


class VOCData(StrictModel):
    """voc07: train 07+12 trainval, test 07 test (Table 7); voc12: train 07 trainval+test + 12 train,
    test 12 val."""

    name: Literal["voc07", "voc12"] = "voc07"
    root: str = Field("", description="folder holding VOCdevkit/; '' = the default search path")


class CocoData(StrictModel):
    """COCO: train ``train<year>``, test ``val<year>`` (Table 8: 2014)."""

    name: Literal["coco"] = "coco"
    root: str = Field("", description="folder holding coco/; '' = the default search path")
    year: str = "2014"


DetectionData = Annotated[
    ScenesData | VOCData | CocoData | LocalizationScenesData | IlsvrcLocalizationData, Field(discriminator="name")
]
#: The data sets of the localization experiment (one object class per image), not of detection.
LOCALIZATION_DATA = ("loc_scenes", "ilsvrc_loc")
#: The heads that localize (appendix C): the per-class RPN and the R-CNN stage trained on its proposals.
LOCALIZER_HEADS = ("per_class_rpn", "per_class_rcnn")


def _paper_optim() -> OptimConfig:
    return OptimConfig(
        batch_size=1,
        lr=1e-3,
        iterations=80_000,
        milestones=[60_000],
        warmup=WarmupConfig(mode="linear", iterations=0),
    )


class DetectorConfig(StrictModel):
    """One trained detector: model, data, SGD schedule, seed (init, data order, flips, RPN/RoI sampling)."""

    model: DetectorModelConfig = Field(default_factory=DetectorModelConfig)
    data: DetectionData = Field(default_factory=VOCData)
    optim: OptimConfig = Field(default_factory=_paper_optim, description="batch_size = images per iteration")
    hflip_prob: float = Field(0.5, ge=0, le=1, description="horizontal flips, the paper's only augmentation")
    seed: int = Field(0, ge=0)
    device: str = Field("auto", description="auto (cuda if available), cpu, cuda, cuda:N")
    log_every: int = Field(10, ge=1, description="iterations per logged (averaged) loss row")
    checkpoint_every: int = Field(500, ge=1, description="iterations between checkpoints (and at the end)")

    @model_validator(mode="after")
    def _localization_data_goes_with_the_localizer(self) -> DetectorConfig:
        localizing = self.data.name in LOCALIZATION_DATA
        if localizing != (self.model.head in LOCALIZER_HEADS):
            raise ValueError(f"data {self.data.name!r} needs model.head "
                             f"{'per_class_rpn' if localizing else 'faster_rcnn'}, got {self.model.head!r}")
        return self


@dataclass(frozen=True)
class DatasetInfo:
    """What the detector and the report need to know about a data set besides its images (here, not in
    ``data.py``, so that ``localization.data``, which ``data.open_datasets`` dispatches to, imports no cycle)."""

    label: str  # the data set as the report names it
    source: str  # where it was read from
    in_channels: int
    classes: list[str]  # classes[label]; classes[0] is the background
    image_mean: list[float] | None  # None = torchvision's ImageNet normalisation
    image_std: list[float] | None
