"""The localization experiment's data sets, opened the way ``resnetlib.detection.data.open_datasets`` opens
a detector's: (train set, test set, ``DatasetInfo``), labels 1..K with 0 the background.

- ``loc_scenes``: the CPU stand-in, one Fashion-MNIST item per canvas with its exact box, written once under
  the run cache in the ILSVRC CLS-LOC layout (``resnetlib.data.localization``), so the stand-in goes
  through the very code that reads ImageNet;
- ``ilsvrc_loc``: ImageNet's CLS-LOC train (the images that have boxes) and val.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data.common import resolve_root
from ..data.localization import LocalizationDataset, write_fashion_mnist_localization
from ..detection.config import DatasetInfo, IlsvrcLocalizationData, LocalizationScenesData

__all__ = ["SCENES_LABEL", "WithBackground", "localization_sets"]

SCENES_LABEL = "Fashion-MNIST localization canvases (one real item per canvas, ILSVRC CLS-LOC layout)"


class WithBackground(Dataset):
    """``LocalizationDataset`` with labels shifted by one: torchvision's detectors keep 0 for background."""

    def __init__(self, dataset: LocalizationDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        image, target = self.dataset[index]
        return image, {**target, "labels": target["labels"] + 1, "image_label": target["image_label"] + 1}


def localization_sets(data: LocalizationScenesData | IlsvrcLocalizationData, seed: int, cache_dir: str | Path):
    """(train, val, info) of ``data``; the stand-in is written once under ``cache_dir``."""
    if isinstance(data, LocalizationScenesData):
        settings = data.model_dump(exclude={"name", "root"}) | {"seed": seed}
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        root = write_fashion_mnist_localization(
            Path(cache_dir) / f"loc-scenes-{digest}", fashion_root=data.root, seed=seed,
            num_train_per_class=data.num_train_per_class, num_val=data.num_val, canvas=data.canvas,
            scale_range=tuple(data.scale_range),
        )
        label, mode = SCENES_LABEL, "L"
    else:
        root, label = resolve_root(data.root), "ImageNet (ILSVRC CLS-LOC) val, trained on the train images with boxes"
        mode = "RGB"  # ImageNet holds some greyscale JPEGs
    train, val = LocalizationDataset(root, "train", mode=mode), LocalizationDataset(root, "val", mode=mode)
    channels = 1 if mode == "L" else 3
    mean = std = None
    if isinstance(data, LocalizationScenesData):  # normalise by the training canvases' pixel statistics
        sample = torch.stack([train[i][0] for i in range(min(len(train), 256))])
        mean, std = [float(sample.mean())] * channels, [float(sample.std())] * channels
    info = DatasetInfo(label, str(root), channels, ["__background__", *train.classes], mean, std)
    return WithBackground(train), WithBackground(val), info
