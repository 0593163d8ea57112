"""The typed training configuration: one object drives the CLI, the notebooks and the tests.

Defaults are the paper's CIFAR-10 protocol (Sec. 4.2); a params file overrides what it names. Loading
and validating never touches data or builds a model, so a bad file fails before any long work.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from .. import models
from ..config import StrictModel, deep_merge, load_yaml, parse_overrides, validate

__all__ = [
    "DataConfig",
    "DeviceData",
    "FolderData",
    "DEVICE_DATASETS",
    "ModelConfig",
    "WarmupConfig",
    "OptimConfig",
    "TrainConfig",
    "load_config",
    "PRESENTATION_ONLY",
    "DATA_CHANNELS",
]

#: The longest interval between checkpoints when ``checkpoint_every`` is not given.
CHECKPOINT_EVERY = 2000

#: Top-level settings that change how a run is shown or saved, never what it computes (not hashed into
#: the run cache's key; free to change when a run is resumed).
PRESENTATION_ONLY = frozenset({"log", "threads", "checkpoint_every"})

#: Image channels of each data set, known before any file is read (the net's first layer must fit).
DATA_CHANNELS = {"cifar10": 3, "fashion_mnist": 1, "synthetic": 3, "imagefolder": 3}

DeviceDatasetName = Literal["cifar10", "fashion_mnist", "synthetic"]
DatasetName = Literal["cifar10", "fashion_mnist", "synthetic", "imagefolder"]
DEVICE_DATASETS: tuple[str, ...] = get_args(DeviceDatasetName)


class _Subsets(StrictModel):
    """What every data family has: where it is, seeded subsets of it, and whether to augment."""

    name: str
    root: str = Field("", description="folder holding the data set; '' = the default search path")
    train_size: int | None = Field(None, ge=1, description="seeded subset of the training images")
    test_size: int | None = Field(None, ge=1, description="seeded subset of the test images")
    augment: bool = True


class DeviceData(_Subsets):
    """A small data set kept whole on the training device (Sec. 4.2: 45k/5k train/val split, 4-pixel pad +
    crop + flip as one batched gather)."""

    name: DeviceDatasetName = "cifar10"
    download: bool = Field(False, description="download where the network allows (torchvision)")
    val_size: int = Field(0, ge=0, description="held out of the training images (paper: 5000)")
    padding: int = Field(4, ge=0, description="zero padding before the random crop (Sec. 4.2)")
    image_size: int | None = Field(
        None, ge=8, description="resize every image to this square side once, at load (bilinear, antialiased): "
        "a cheaper stand-in (16 px costs ~1/3 of 28 px per image); None = the data set's own size"
    )


class FolderData(_Subsets):
    """ImageNet-layout class folders ``root/train``, ``root/val`` read by DataLoader workers (Sec. 3.4: scale
    augmentation, PCA lighting, 10-crop testing); the test images are those of ``val/``."""

    name: Literal["imagefolder"] = "imagefolder"
    scale: tuple[int, int] = Field((256, 480), description="shorter side resized into this range")
    crop: int = Field(224, ge=8, description="training and test crop")
    workers: int = Field(0, ge=0, description="DataLoader workers decoding the images")
    ten_crop: bool = Field(True, description="Table 2: average the predictions of 10 crops at test time")

    @field_validator("scale")
    @classmethod
    def _scale_ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] > v[1] or v[0] < 1:
            raise ValueError(f"scale must be (low, high) with 1 <= low <= high, got {v}")
        return v

    @model_validator(mode="after")
    def _crop_fits(self) -> "FolderData":
        if self.crop > self.scale[0]:
            raise ValueError(f"crop {self.crop} is larger than the smallest shorter side {self.scale[0]} of scale")
        return self


def data_family(data: Any) -> str:
    """The union tag of a data section: ``imagefolder`` or ``device`` (a missing name means cifar10)."""
    name = data.get("name", "cifar10") if isinstance(data, Mapping) else getattr(data, "name", None)
    return "imagefolder" if name == "imagefolder" else "device"


#: Which data and how much of it: the fields of one data family only (``name`` chooses the family).
DataConfig = Annotated[
    Union[Annotated[DeviceData, Tag("device")], Annotated[FolderData, Tag("imagefolder")]],
    Discriminator(data_family),
]


class ModelConfig(StrictModel):
    name: str = "cifar_resnet20"
    shortcut: Literal["A", "B", "C"] | None = Field(None, description="None = the paper's default for the net")
    stride_in_1x1: bool = True
    activation_checkpointing: bool = False

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        models.family(v)  # raises ValueError listing the known names
        return v

    def build_options(self, num_classes: int, in_channels: int) -> dict[str, Any]:
        opts: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels}
        family = models.family(self.name)
        if family == "vgg":
            if in_channels != 3:
                raise ValueError("VGG nets take 3-channel input")
            return {"num_classes": num_classes}
        if self.shortcut is not None:
            opts["shortcut"] = self.shortcut
        opts["activation_checkpointing"] = self.activation_checkpointing
        if family == "imagenet":
            opts["stride_in_1x1"] = self.stride_in_1x1
        return opts


class WarmupConfig(StrictModel):
    """Sec. 4.2 for ResNet-110: lr 0.01 until the training error is below 80% (~400 iterations)."""

    mode: Literal["off", "until_error", "iterations", "linear"] = Field(
        "off", description="linear = from lr/1000 to lr over 'iterations' (Faster R-CNN, Sec. 4.3)"
    )
    lr: float = Field(0.01, gt=0)
    train_error_below: float = Field(80.0, gt=0, le=100, description="percent, 'until_error' mode")
    check_every: int = Field(10, ge=1, description="iterations over which the training error is measured")
    iterations: int = Field(400, ge=0, description="length of the warm-up in 'iterations' mode")


class OptimConfig(StrictModel):
    """SGD of Sec. 3.4/4.2: momentum 0.9, weight decay 1e-4, lr 0.1 /10 at 32k and 48k, stop at 64k."""

    batch_size: int = Field(128, ge=1, description="global batch, split evenly over DDP ranks")
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    iterations: int = Field(64_000, ge=1)
    milestones: list[int] = Field(
        default_factory=lambda: [32_000, 48_000],
        description="iterations at which lr is multiplied by lr_decay; a float in (0, 1) is that fraction of "
        "'iterations' (0.5 = half way), rounded to the nearest iteration",
    )
    lr_decay: float = Field(0.1, gt=0, le=1)
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)

    @model_validator(mode="before")
    @classmethod
    def _fractions_to_iterations(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("milestones"), list | tuple):
            iterations = data.get("iterations", cls.model_fields["iterations"].default)
            if isinstance(iterations, int):
                data = {**data, "milestones": [_at_fraction(m, iterations) for m in data["milestones"]]}
        return data

    @model_validator(mode="after")
    def _milestones_sorted(self) -> "OptimConfig":
        if sorted(self.milestones) != list(self.milestones) or any(m < 1 for m in self.milestones):
            raise ValueError(f"milestones must be increasing positive iterations, got {self.milestones}")
        return self


def _at_fraction(milestone: Any, iterations: int) -> Any:
    """``milestone`` as an iteration: a float in (0, 1) is a fraction of ``iterations``."""
    if isinstance(milestone, float) and 0 < milestone < 1:
        return round(milestone * iterations)
    return milestone


class TrainConfig(StrictModel):
    """One training run. ``seed`` drives initialisation, data order and augmentation."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DeviceData)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    seed: int = 0
    device: str = Field("auto", description="auto (cuda if available), cpu, cuda, cuda:N")
    amp: Literal["off", "bf16", "fp16", "auto"] = Field(
        "off", description="autocast dtype; fp16 uses a GradScaler; auto = bf16 on CUDA and on CPUs with bf16 "
        "instructions (avx512_bf16, amx_bf16), else off"
    )
    channels_last: bool = Field(True, description="NHWC memory format: faster convs on CUDA and on x86 CPUs")
    compile: bool = Field(False, description="torch.compile the model")
    deterministic: bool = Field(False, description="torch.use_deterministic_algorithms (tests, resume checks)")
    threads: int | None = Field(None, ge=1, description="torch.set_num_threads; None = torch's default")
    eval_every: int = Field(1000, ge=1, description="iterations between evaluations (one metrics.csv row each)")
    eval_batch_size: int = Field(500, ge=1)
    checkpoint_every: int = Field(
        2000, ge=1, description="iterations between checkpoints (and one at the end); unset = every "
        "min(iterations, 2000) iterations, but not more often than eval_every"
    )
    log: Literal["auto", "bar", "lines", "none"] = Field(
        "auto", description="auto = a tqdm bar on a terminal, one line per evaluation otherwise"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_checkpoint_every(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("checkpoint_every") is None:
            iterations = _get(data.get("optim"), "iterations", OptimConfig.model_fields["iterations"].default)
            eval_every = data.get("eval_every", cls.model_fields["eval_every"].default)
            if isinstance(iterations, int) and isinstance(eval_every, int):
                data = {**data, "checkpoint_every": max(eval_every, min(iterations, CHECKPOINT_EVERY))}
        return data

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        if v != "auto" and not (v == "cpu" or v == "cuda" or v.startswith("cuda:") or v == "mps"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {v!r}")
        return v

    @model_validator(mode="after")
    def _net_fits_data(self) -> "TrainConfig":
        """A VGG net on 1-channel Fashion-MNIST fails here, not after the data is read."""
        channels = DATA_CHANNELS[self.data.name]
        try:
            self.model.build_options(num_classes=10, in_channels=channels)
        except ValueError as exc:
            raise ValueError(
                f"{exc}; data {self.data.name!r} has {channels} channel(s): choose a cifar_resnet/cifar_plain "
                "net or a 3-channel data set"
            ) from None
        return self

    @model_validator(mode="after")
    def _fp16_needs_cuda(self) -> "TrainConfig":
        if self.amp == "fp16" and self.device == "cpu":
            raise ValueError("amp=fp16 needs CUDA; use amp=bf16 on CPU")
        return self


def _get(section: Any, key: str, default: Any) -> Any:
    """``section[key]`` of a mapping or a model, ``default`` when absent."""
    if isinstance(section, Mapping):
        return section.get(key, default)
    return getattr(section, key, default)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Params file (with optional ``_base.yaml``) plus ``--set key=value`` overrides, validated."""
    data: dict[str, Any] = load_yaml(path) if path else {}
    data = deep_merge(data, parse_overrides(overrides))
    return validate(TrainConfig, data, source=f"training parameters ({path or 'defaults'})")
