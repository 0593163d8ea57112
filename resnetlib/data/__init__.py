"""Data sets of the paper and their CPU stand-ins.

>>> from resnetlib import data
>>> d = data.load("fashion_mnist", train_size=10_000, val_size=0)   # CPU stand-in for CIFAR-10
>>> d = data.load("cifar10", "/data", val_size=5_000)               # Sec. 4.2: 45k train / 5k val
>>> batches = data.DeviceBatches(d.train, d.mean, batch_size=128, seed=0, device="cuda")
>>> x, y = batches.batch(i)                                         # a pure function of (seed, i)

Small data sets (``DATASETS``) live whole on the training device (``load`` + ``DeviceBatches``);
ImageNet-style class folders go through ``imagenet_loaders`` (Sec. 3.4), and
``export_image_folder`` writes a small data set in that layout as a CPU stand-in for ImageNet.
"""

from __future__ import annotations

import os

from .cifar10 import read_cifar10
from .common import (
    DataCorruptError,
    DataNotFoundError,
    ImageData,
    Split,
    build_image_data,
    check_sizes,
    default_root,
    resize_images,
)
from .device import DeviceBatches
from .export import export_image_folder
from .fashion_mnist import read_fashion_mnist
from .imagenet import (
    IMAGENET_MEAN,
    Lighting,
    RandomShorterSideResize,
    imagenet_folders,
    imagenet_loaders,
    imagenet_transforms,
    ten_crop_predict,
)
from .synthetic import synthetic
from .training import TrainingData, device_training_data

__all__ = [
    "DATASETS",
    "IMAGENET_MEAN",
    "DataCorruptError",
    "DataNotFoundError",
    "DeviceBatches",
    "ImageData",
    "Lighting",
    "RandomShorterSideResize",
    "Split",
    "TrainingData",
    "default_root",
    "device_training_data",
    "export_image_folder",
    "imagenet_folders",
    "imagenet_loaders",
    "imagenet_transforms",
    "load",
    "resize_images",
    "ten_crop_predict",
]

DATASETS: dict[str, str] = {
    "cifar10": "CIFAR-10 (Sec. 4.2): 50k train / 10k test 3x32x32 colour images, 10 classes",
    "fashion_mnist": "Fashion-MNIST: 60k train / 10k test 1x28x28 grey images, 10 classes (CPU stand-in)",
    "synthetic": "random uint8 images with random labels, 3x32x32, 10 classes (smoke tests only)",
}

_READERS = {"cifar10": read_cifar10, "fashion_mnist": read_fashion_mnist}


def load(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    train_size: int | None = None,
    val_size: int = 0,
    test_size: int | None = None,
    seed: int = 0,
    download: bool = False,
    image_size: int | None = None,
) -> ImageData:
    """Load data set ``name`` (one of ``DATASETS``) whole into memory.

    ``root``: the folder to look in (None or "" = $RESNETLIB_DATA or ``<repo>/data``; Fashion-MNIST
    also falls back to Debian's /usr/share/datasets/fashion-mnist). ``val_size`` carves a seeded
    validation split out of the training set (the paper's 45k/5k, Sec. 4.2); ``train_size`` and
    ``test_size`` then take seeded subsets (for small CPU runs). All subsets are seeded random and
    class-balanced (round-robin over classes); ``val`` does not depend on ``train_size``. ``mean`` is
    the per-pixel mean of the final training split. ``download=True`` lets torchvision fetch missing
    files where the network allows. ``image_size`` resizes every image to that square side once
    (``resize_images``: bilinear, antialiased, back to uint8), before the mean is taken. Missing files
    raise DataNotFoundError saying how to get them.
    For "synthetic", ``train_size``/``test_size`` default to 512/256 and ``root`` is ignored.
    """
    if name not in DATASETS:
        raise ValueError(
            f"unknown data set {name!r}; known: {', '.join(DATASETS)} "
            f"(ImageNet-style class folders: resnetlib.data.imagenet_loaders)"
        )
    check_sizes(train_size, val_size, test_size)
    if name == "synthetic":
        return resize_images(synthetic(train_size, test_size, val_size=val_size, seed=seed), image_size)
    train, test, classes, source = _READERS[name](root, download=download)
    return resize_images(build_image_data(
        name,
        source,
        train,
        test,
        classes,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        seed=seed,
    ), image_size)
