"""The class-folder data family of the experiments (Fig. 4, Tables 2 and 3): the Sec. 3.4 ImageNet protocol.

At the paper's scale the nets train on ILSVRC2012 class folders (``data_root/train``, ``data_root/val``).
The CPU profiles train on a small data set written once as class folders under ``<runs_dir>/exports/``
(``stand_in``: Fashion-MNIST at 32 px standing in for ImageNet) through the same ImageNet pipeline: scale
augmentation, random crop and flip, 10-crop testing. ``train.data`` is then ``imagefolder`` either way;
``stand_in`` only says where the folders come from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from .. import data as datasets
from .. import paper
from ..config import StrictModel
from ..data.common import resolve_root
from ..models.imagenet import CONFIGS
from ..train import TrainConfig
from ..train.config import DeviceDatasetName, FolderData
from .training import FULL_TRAIN_IMAGES, DeviceFamily, TrainingParams, schedule_text

PROTOCOL = paper.IMAGENET_PROTOCOL
#: ILSVRC2012 training images: a property of the data set (used for epochs when train_size is None).
IMAGENET_TRAIN_IMAGES = 1_281_167

#: The smoke scale of a class-folder experiment: the ImageNet nets cost more per image at 32 px than the
#: CIFAR nets, and a 10-crop evaluation costs ten forward passes per image.
SMOKE_FOLDERS: dict[str, Any] = {
    "data": {"name": "imagefolder", "train_size": 512, "test_size": 64, "scale": [32, 40], "crop": 32},
    "optim": {"batch_size": 32, "iterations": 16, "milestones": [0.5, 0.75]},
    "eval_every": 8,
    "eval_batch_size": 128,
}


#: Table 1's nets halve the side five times (conv1, max pool, conv3_x..conv5_x): output stride 32.
OUTPUT_STRIDE = 32
#: The smallest final feature map at which conv5_x's 3x3 convolutions still see a neighbourhood (at 1x1
#: they act as 1x1 convolutions and the net is not the paper's architecture).
MIN_FINAL_MAP = 2


def final_map_side(crop: int) -> int:
    """Side of conv5_x's output for a ``crop`` px input (224 -> 7, Table 1)."""
    side = crop
    for _ in range(5):
        side = (side + 1) // 2
    return side


def spatial_problem(crop: int) -> str | None:
    """Why a crop is too small for Table 1's nets to keep their architecture, or None."""
    side = final_map_side(crop)
    if side >= MIN_FINAL_MAP:
        return None
    return (f"at {crop} px crops conv5_x runs on {side}x{side} maps, so its 3x3 convolutions act as 1x1 ones: "
            f"needs crops of >= {OUTPUT_STRIDE * MIN_FINAL_MAP} px for a {MIN_FINAL_MAP}x{MIN_FINAL_MAP} final map")


def table1_depth(depth: int) -> int:
    """An ImageNet net's depth: one of Table 1's."""
    if depth not in CONFIGS:
        raise ValueError(f"ImageNet nets have depths {sorted(CONFIGS)} (Table 1); got {depth}")
    return depth


#: Sorted distinct depths of Table 1's nets.
Table1Depths = Annotated[list[Annotated[int, AfterValidator(table1_depth)]], AfterValidator(lambda v: sorted(set(v)))]


class StandIn(StrictModel):
    """A small data set exported as class folders (``<runs_dir>/exports/``) in place of ImageNet."""

    dataset: DeviceDatasetName = "fashion_mnist"
    image_size: int = Field(32, ge=8, description="side of the exported images")


class ClassFolderParams(TrainingParams):
    """An experiment that trains on class folders: ``train.data.name: imagefolder`` plus ``stand_in``."""

    TRAIN_DEFAULTS: ClassVar[dict[str, Any]] = SMOKE_FOLDERS
    DATA_FAMILIES: ClassVar[tuple[str, ...]] = ("imagefolder",)

    stand_in: StandIn | None = Field(
        default_factory=StandIn,
        description="class folders exported from this small data set; None: ImageNet folders at data_root",
    )

    @model_validator(mode="after")
    def _stand_in_needs_folders(self):
        if self.stand_in is not None and not isinstance(self.base_config().data, FolderData):
            raise ValueError("stand_in exports class folders: set train.data.name to imagefolder, or stand_in: None")
        return self

    def scale_problem(self) -> str | None:
        """Table 1's nets on class folders need every stage to keep spatial extent (``spatial_problem``)."""
        data = self.base_config().data
        return spatial_problem(data.crop) if isinstance(data, FolderData) else None

    def family(self) -> "FolderFamily | DeviceFamily":
        config = self.base_config()
        if isinstance(config.data, FolderData):
            return FolderFamily(config, self.stand_in)
        return DeviceFamily(config)


@dataclass(frozen=True)
class FolderFamily:
    """ImageNet-layout class folders (Sec. 3.4), or a stand-in exported as such."""

    config: TrainConfig
    stand_in: StandIn | None

    @property
    def name(self) -> str:
        return self.stand_in.dataset if self.stand_in else "imagefolder"

    def label(self) -> str:
        """The data set as results.json names it."""
        return f"{self.name} class folders" if self.stand_in else "imagefolder"

    def train_images(self) -> int:
        full = FULL_TRAIN_IMAGES[self.stand_in.dataset] if self.stand_in else IMAGENET_TRAIN_IMAGES
        return self.config.data.train_size or full

    def epochs(self) -> float:
        return self.config.optim.iterations * self.config.optim.batch_size / self.train_images()

    def at_paper_scale(self) -> bool:
        """The paper's ImageNet protocol (Sec. 3.4) on the full class folders."""
        d, o = self.config.data, self.config.optim
        return (
            self.stand_in is None
            and d.train_size is None
            and d.test_size is None
            and o.iterations >= PROTOCOL["iterations"]
            and o.batch_size == PROTOCOL["batch_size"]
            and tuple(d.scale) == tuple(PROTOCOL["scale_range"])
            and d.crop == PROTOCOL["crop"]
            and d.ten_crop
        )

    def data_text(self) -> str:
        if self.stand_in is None:
            return "ImageNet-style class folders at data_root"
        return f"{self.name} class folders at {self.stand_in.image_size} px standing in for ImageNet"

    def scale_text(self) -> str:
        d = self.config.data
        images = d.train_size or ("all" if self.stand_in is None else self.train_images())
        return (f"{self.data_text()}: {schedule_text(self.config, images, self.epochs())}, scale {tuple(d.scale)}, "
                f"crop {d.crop}, {'10-crop' if d.ten_crop else 'centre-crop'} test")


def class_folders(params: ClassFolderParams) -> Path:
    """The folder holding ``train/`` and ``val/``: ``data_root`` for ImageNet, else an (idempotent) export."""
    if params.stand_in is None:
        root = resolve_root(params.data_root)
        datasets.imagenet_folders(root)  # a missing folder fails here, naming the expected layout
        return root
    s, d = params.stand_in, params.base_config().data
    sizes = f"train{d.train_size or 'all'}-val{d.test_size or 'all'}"
    root = params.runs_path() / "exports" / f"{s.dataset}-{s.image_size}px-{sizes}"
    small = datasets.load(s.dataset, params.data_root or None, train_size=d.train_size, test_size=d.test_size,
                          seed=0)
    return datasets.export_image_folder(small, root, image_size=s.image_size)


def folder_data(params: ClassFolderParams, root: Path) -> dict[str, Any]:
    """The ``data`` layer of ``train_config`` for the folders at ``root``: an export already holds exactly
    the chosen subsets."""
    subsets = {"train_size": None, "test_size": None} if params.stand_in else {}
    return {"root": str(root), **subsets}


def folder_source(params: ClassFolderParams, root: Path) -> str:
    """Where the images came from, for results.json."""
    if params.stand_in is None:
        return str(root)
    marker = json.loads((root / "export.json").read_text())
    return f"{root}, exported from {marker['source']}"
