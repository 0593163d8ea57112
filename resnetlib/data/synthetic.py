"""Random images with random labels, for smoke tests only: nothing here can be learnt beyond
memorisation, so no paper number is ever measured on it."""

from __future__ import annotations

import torch

from .common import ImageData, Split, build_image_data, check_sizes, derive_seed

__all__ = ["SOURCE", "synthetic"]

SOURCE = "synthetic (random)"
DEFAULT_TRAIN, DEFAULT_TEST = 512, 256


def _random_split(n: int, channels: int, image_size: int, num_classes: int, g: torch.Generator) -> Split:
    images = torch.randint(0, 256, (n, channels, image_size, image_size), generator=g, dtype=torch.uint8)
    return Split(images, torch.randint(0, num_classes, (n,), generator=g, dtype=torch.int64))


def synthetic(
    train_size: int | None = None,
    test_size: int | None = None,
    *,
    val_size: int = 0,
    channels: int = 3,
    image_size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
) -> ImageData:
    """A seeded random data set: ``train_size`` (default 512) train images after carving ``val_size``
    validation images, ``test_size`` (default 256) test images, each channels x image_size x image_size."""
    check_sizes(train_size, val_size, test_size)
    for name, value in (("channels", channels), ("image_size", image_size), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"synthetic data: {name} must be a positive integer; got {value!r}")
    n_train = (train_size or DEFAULT_TRAIN) + val_size
    g = torch.Generator().manual_seed(derive_seed(seed, 4, 0))
    train = _random_split(n_train, channels, image_size, num_classes, g)
    test = _random_split(test_size or DEFAULT_TEST, channels, image_size, num_classes, g)
    classes = [f"class_{k}" for k in range(num_classes)]
    return build_image_data("synthetic", SOURCE, train, test, classes, val_size=val_size, seed=seed)
