"""(3) conventional: what users usually write. A torchvision-style CIFAR data set over uint8 HWC numpy
images -> ``DataLoader(shuffle=True)`` -> PIL ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip``
+ ``ToTensor`` + ``Normalize``, then the same step as (1) bare."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from .bare_step import Runner, Trainer
from .settings import Settings
from .timing import num_threads

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class ConventionalCIFAR(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's __getitem__ over uint8 HWC images held in memory."""

    def __init__(self, data: np.ndarray, targets: list[int], transform: Callable) -> None:
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        img, target = self.data[index], self.targets[index]
        return self.transform(Image.fromarray(img)), target


def conventional_loader(data: np.ndarray, targets: list[int], batch: int, workers: int, pin: bool):
    import torchvision.transforms as T

    transform = T.Compose([
        T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
        T.Normalize(CIFAR_MEAN, CIFAR_STD),
    ])
    return torch.utils.data.DataLoader(
        ConventionalCIFAR(data, targets, transform), batch_size=batch, shuffle=True, num_workers=workers,
        drop_last=True, pin_memory=pin,
    )


def forever(loader) -> Iterator:
    while True:
        it = iter(loader)
        try:
            yield from it
        finally:
            del it


class ConventionalRunner(Runner):
    """(3) torchvision-style data set + DataLoader + PIL transforms, then the bare step."""

    def __init__(self, s: Settings, name: str, images_hwc: np.ndarray, labels: list[int], amp: str,
                 workers: int, threads: int | None) -> None:
        super().__init__(s)
        self.threads, self.workers = threads, workers
        self.trainer = Trainer(s, name, amp, s.conventional_channels_last)
        with num_threads(threads or s.threads):
            loader = conventional_loader(images_hwc, labels, s.batch, workers, s.device.type == "cuda")
            self.batches = forever(loader)

    def step(self) -> None:
        x, y = next(self.batches)
        x, y = x.to(self.s.device, non_blocking=True), y.to(self.s.device, non_blocking=True)
        if self.s.conventional_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.trainer.step(x, y)

    def close(self) -> None:
        self.batches.close()  # ends the loader's worker processes
