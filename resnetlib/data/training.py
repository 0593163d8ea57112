"""What the training loop reads from a data set: ``TrainingData`` (Sec. 4.2 on the device, Sec. 3.4 folders).

``device_training_data`` wraps a small data set that lives whole on the device (``DeviceBatches`` for
training and evaluation); ``resnetlib.data.loader.imagefolder_training_data`` builds the same shape from
ImageNet-style class folders read by DataLoader workers. Neither knows the training configuration: the
loop passes plain values, so ``resnetlib.data`` never imports ``resnetlib.train``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from .common import ImageData
from .device import DeviceBatches

__all__ = ["TrainingData", "device_training_data"]

EvalBatches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class TrainingData:
    """A data set as ``fit`` uses it: training batches by iteration, evaluation splits by name."""

    name: str
    source: str
    num_classes: int
    in_channels: int
    train: Any  # .batch(i, rank, world) -> (x, y); .batches_per_epoch
    evaluation: dict[str, EvalBatches]  # "val" / "test" -> a fresh pass over the split
    describe: str


def device_training_data(
    data: ImageData, *, batch_size: int, eval_batch_size: int, seed: int, device: torch.device,
    augment: bool, padding: int,
) -> TrainingData:
    """``data`` on ``device``: augmented training batches (Sec. 4.2), un-augmented val/test passes."""
    train = DeviceBatches(data.train, data.mean, batch_size, seed, device, augment=augment, padding=padding)
    evaluation = {}
    for split_name, split in (("val", data.val), ("test", data.test)):
        if split is not None and len(split):
            evaluation[split_name] = _eval_batches(data, split, eval_batch_size, seed, device)
    return TrainingData(
        data.name, data.source, data.num_classes, data.in_channels, train, evaluation, data.describe()
    )


def _eval_batches(data: ImageData, split, eval_batch_size: int, seed: int, device) -> EvalBatches:
    batches = DeviceBatches(split, data.mean, min(eval_batch_size, len(split)), seed, device, augment=False)
    return lambda: batches.eval_batches(eval_batch_size)
