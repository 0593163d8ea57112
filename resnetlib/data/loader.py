"""Iteration-based batches from a DataLoader, for ImageNet-style class folders (Sec. 3.4).

Images too many to keep on the device are decoded and augmented by DataLoader workers. The sample
order of epoch e is a permutation seeded by (seed, e), as for ``DeviceBatches``, so a resumed run
continues at the right place of the right epoch without replaying it. (The random augmentation inside
workers is not replayed bit for bit; the exact-resume guarantee is for the device-resident data sets.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .common import derive_seed
from .imagenet import imagenet_loaders
from .training import TrainingData

_ORDER_STREAM = 10


class _ShareOfEpoch(Sampler[int]):
    """Indices of one rank's share of global batches ``start, start+1, ...`` of epoch ``epoch``."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start: int, rank: int, world: int):
        g = torch.Generator().manual_seed(derive_seed(seed, _ORDER_STREAM, epoch))
        order = torch.randperm(n, generator=g)
        batches = n // batch_size
        self.indices: list[int] = []
        for b in range(start, batches):
            self.indices.extend(order[b * batch_size : (b + 1) * batch_size][rank::world].tolist())

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class LoaderBatches:
    """``batch(i, rank, world)`` over a map-style dataset, read sequentially through a DataLoader."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, device: torch.device,
                 workers: int) -> None:
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.device, self.workers = device, workers
        self.batches_per_epoch = len(dataset) // batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"{len(dataset)} training images are fewer than one batch of {batch_size}")
        self._next: int | None = None
        self._it: Iterator[Any] | None = None

    def _start(self, i: int, rank: int, world: int) -> None:
        epoch, position = divmod(i, self.batches_per_epoch)
        sampler = _ShareOfEpoch(len(self.dataset), self.batch_size, self.seed, epoch, position, rank, world)
        loader = DataLoader(self.dataset, self.batch_size // world, sampler=sampler, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", drop_last=True)
        self._it = iter(loader)

    def batch(self, i: int, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        if self._next != i or i % self.batches_per_epoch == 0:
            self._start(i, rank, world)
        x, y = next(self._it)
        self._next = i + 1
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def imagefolder_training_data(
    root: str | None, *, batch_size: int, eval_batch_size: int, seed: int, device: torch.device, workers: int,
    scale: tuple[int, int], crop: int, train_size: int | None, test_size: int | None, augment: bool,
    ten_crop: bool,
) -> TrainingData:
    """Training data from ``root/train`` and ``root/val`` class folders (Sec. 3.4; Table 2's 10-crop test)."""
    # The loaders' batch size is the evaluation one; training batches come from LoaderBatches below.
    train_loader, val_loader, classes = imagenet_loaders(
        root or None, min(eval_batch_size, batch_size), workers=workers, scale=scale, crop=crop,
        train_size=train_size, val_size=test_size, seed=seed, color=augment,
    )
    train = LoaderBatches(train_loader.dataset, batch_size, seed, device, workers)
    sizes = f"{len(train_loader.dataset)} train / {len(val_loader.dataset)} val images"
    return TrainingData(
        "imagefolder", str(root), len(classes), 3, train,
        {"test": _val_batches(val_loader, device, ten_crop)},
        f"class folders under {root}: {sizes}, {len(classes)} classes, scale {scale}, crop {crop}"
        f"{', 10-crop test' if ten_crop else ''}",
    )


def _val_batches(val_loader: DataLoader, device: torch.device, ten_crop: bool):
    """A fresh pass over the validation loader: 10-crop stacks, or only their centre crop."""

    def batches():
        for x, y in val_loader:
            if not ten_crop:
                x = x[:, 4]  # the centre crop of the ten (TenCrop's order: 4 corners, centre, then flips)
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return batches
