"""What every small data set shares: the ``Split``/``ImageData`` containers, the errors, the default
data folder, the per-pixel mean (Sec. 4.2) and the seeded, class-balanced subsets that carve a
validation split (the paper's 45k/5k, Sec. 4.2) or a small CPU-scale training set out of a data set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "DataCorruptError",
    "DataNotFoundError",
    "ImageData",
    "Split",
    "balanced_subset",
    "build_image_data",
    "default_root",
    "derive_seed",
    "pixel_mean",
    "resolve_root",
]

from ..paths import REPO_ROOT


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not where we looked; the message names each folder and how to get them."""


class DataCorruptError(ValueError):
    """A data set's files exist but cannot be read as the format they claim to be."""


def default_root() -> Path:
    """The folder searched when no root is given: ``$RESNETLIB_DATA`` if set, else ``<repo>/data``."""
    env = os.environ.get("RESNETLIB_DATA", "")
    return Path(env).expanduser() if env else REPO_ROOT / "data"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` as a Path; ``None`` or ``""`` (the experiments' "default search path") -> default_root()."""
    if root is None or str(root) == "":
        return default_root()
    return Path(root).expanduser()


@dataclass
class Split:
    """One split of a data set held whole in memory: uint8 images [N,C,H,W] and int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if (
            not isinstance(self.images, torch.Tensor)
            or self.images.dtype != torch.uint8
            or self.images.dim() != 4
        ):
            raise TypeError(
                f"Split.images must be a uint8 tensor [N,C,H,W]; got {_describe_tensor(self.images)}"
            )
        if (
            not isinstance(self.labels, torch.Tensor)
            or self.labels.dtype != torch.int64
            or self.labels.dim() != 1
        ):
            raise TypeError(f"Split.labels must be an int64 tensor [N]; got {_describe_tensor(self.labels)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"Split has {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> Split:
        """The samples at ``index`` (a 1-D index tensor), as a new Split."""
        return Split(self.images[index], self.labels[index])


@dataclass
class ImageData:
    """A small image data set with train / optional val / test splits and its training-set mean.

    ``mean`` is the per-pixel mean of the *training* images in [0,1] units, float32 [C,H,W]: the
    CIFAR-10 protocol subtracts it from every input (Sec. 4.2, "per-pixel mean subtracted").
    """

    name: str
    source: str
    train: Split
    val: Split | None
    test: Split
    mean: torch.Tensor
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[2])

    def describe(self) -> str:
        """One line, e.g. 'fashion_mnist from /usr/share/datasets/fashion-mnist: 10000 train / 0 val /
        10000 test, 1x28x28'."""
        _, c, h, w = self.train.images.shape
        n_val = len(self.val) if self.val is not None else 0
        return (
            f"{self.name} from {self.source}: {len(self.train)} train / {n_val} val / {len(self.test)} test, "
            f"{c}x{h}x{w}"
        )


def _describe_tensor(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} tensor of shape {list(x.shape)}"
    return type(x).__name__


def pixel_mean(images: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Per-pixel mean of uint8 images [N,C,H,W] in [0,1] units, float32 [C,H,W] (Sec. 4.2).

    Summed in float64 over chunks so 50k CIFAR images never exist as one float copy.
    """
    if len(images) == 0:
        raise ValueError("cannot take the per-pixel mean of an empty training split")
    total = torch.zeros(images.shape[1:], dtype=torch.float64)
    for start in range(0, len(images), chunk):
        total += images[start : start + chunk].to(torch.float64).sum(0)
    return (total / (255.0 * len(images))).to(torch.float32)


def derive_seed(seed: int, stream: int, index: int) -> int:
    """A generator seed for draw ``index`` of random ``stream`` under the user's ``seed``.

    Different streams never share a seed for the same index. Streams in use: 1 val split, 2 train
    subset, 3 test subset, 4 synthetic images (here and synthetic.py); 5 epoch order, 6 augmentation
    (device.py); 7, 8, 9 ImageNet train/val subsets and shuffling (imagenet.py).
    """
    return ((int(seed) * 1_000_003 + int(index)) * 16 + int(stream)) % (2**63)


def balanced_subset(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of a seeded random subset of ``n`` samples, as class-balanced as the data allow.

    The samples are shuffled, then taken round-robin over the classes (every class's 1st sample, then
    every class's 2nd, ...), so class counts differ by at most one unless a class runs out. Returned
    in ascending order so the subset keeps the data set's own order.
    """
    total = len(labels)
    if not 0 <= n <= total:
        raise ValueError(f"cannot take {n} samples from a split of {total}")
    perm = torch.randperm(total, generator=generator)
    shuffled = labels[perm]
    order = torch.argsort(shuffled, stable=True)  # grouped by class, shuffled order kept within a class
    grouped = shuffled[order]
    starts = torch.searchsorted(grouped, grouped, side="left")
    rank = torch.empty(total, dtype=torch.int64)
    rank[order] = torch.arange(total) - starts  # position of each shuffled sample within its class
    pick = torch.argsort(rank * total + torch.arange(total))[:n]
    return torch.sort(perm[pick]).values


def _check_size(name: str, value: int | None, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (or None for all); got {value!r}")


def check_sizes(train_size: int | None, val_size: int, test_size: int | None) -> None:
    """Reject bad subset sizes before any file is read."""
    _check_size("train_size", train_size, 1)
    _check_size("val_size", val_size, 0)
    _check_size("test_size", test_size, 1)


def build_image_data(
    name: str,
    source: str,
    train: Split,
    test: Split,
    classes: list[str],
    *,
    train_size: int | None = None,
    val_size: int = 0,
    test_size: int | None = None,
    seed: int = 0,
) -> ImageData:
    """Carve val / subset train / subset test (all seeded, class-balanced) and take the train mean.

    ``val_size`` samples are taken first from the full training set (the paper's 45k/5k split,
    Sec. 4.2), so the validation split does not depend on ``train_size``; ``train_size`` then takes a
    subset of the remainder, so it is the size of the final training split.
    """
    check_sizes(train_size, val_size, test_size)
    available = len(train)
    if val_size + (train_size or 1) > available:
        want = f"val_size={val_size} + train_size={train_size or 'at least 1'}"
        raise ValueError(f"{name}: {want} exceeds the {available} training images")
    if test_size is not None and test_size > len(test):
        raise ValueError(f"{name}: test_size={test_size} exceeds the {len(test)} test images")

    val = None
    if val_size:
        val_idx = balanced_subset(
            train.labels, val_size, torch.Generator().manual_seed(derive_seed(seed, 1, 0))
        )
        keep = torch.ones(available, dtype=torch.bool)
        keep[val_idx] = False
        val, train = train.subset(val_idx), train.subset(keep.nonzero().squeeze(1))
    if train_size is not None and train_size < len(train):
        g = torch.Generator().manual_seed(derive_seed(seed, 2, 0))
        train = train.subset(balanced_subset(train.labels, train_size, g))
    if test_size is not None and test_size < len(test):
        g = torch.Generator().manual_seed(derive_seed(seed, 3, 0))
        test = test.subset(balanced_subset(test.labels, test_size, g))
    return ImageData(name, source, train, val, test, pixel_mean(train.images), list(classes))


def resize_split(split: Split, size: int, chunk: int = 8192) -> Split:
    """Every image of ``split`` resized to ``size`` x ``size`` (bilinear, antialiased, rounded to uint8)."""
    out = torch.empty((len(split), split.images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(split), chunk):
        x = split.images[start : start + chunk].float()
        y = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return Split(out, split.labels)


def resize_images(data: ImageData, size: int | None) -> ImageData:
    """``data`` with every split resized to ``size`` px square and the training mean taken again; ``None``
    or the data's own size returns ``data`` unchanged. A cheaper stand-in for the budget study: the
    per-image cost of a CIFAR net scales with the pixel count."""
    if size is None:
        return data
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"image_size must be a positive integer or None; got {size!r}")
    if tuple(data.train.images.shape[2:]) == (size, size):
        return data
    train, test = resize_split(data.train, size), resize_split(data.test, size)
    val = resize_split(data.val, size) if data.val is not None else None
    return ImageData(data.name, data.source, train, val, test, pixel_mean(train.images), list(data.classes))
