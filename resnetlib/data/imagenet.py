"""ImageNet-style class folders (``ROOT/train/<class>/*.JPEG``, ``ROOT/val/<class>/*``) and the
paper's ImageNet protocol (Sec. 3.4):

- training: "The image is resized with its shorter side randomly sampled in [256, 480] for scale
  augmentation. A 224x224 crop is randomly sampled from an image or its horizontal flip, with the
  per-pixel mean subtracted. The standard color augmentation in [21] is used."
- testing: "for comparison studies we adopt the standard 10-crop testing [21]" (Table 2).

We subtract the per-channel ImageNet mean rather than the per-pixel mean (which needs a pass over
the training set at a fixed size), and do not divide by a standard deviation, as the paper does not.
Grey images are read as RGB (``PIL.Image.convert("RGB")``, ImageFolder's default loader).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from torchvision import transforms
from torchvision.transforms import functional as TF

from .common import DataNotFoundError, derive_seed, resolve_root

__all__ = [
    "IMAGENET_EIGVAL",
    "IMAGENET_EIGVEC",
    "IMAGENET_MEAN",
    "Lighting",
    "RandomShorterSideResize",
    "imagenet_folders",
    "imagenet_loaders",
    "imagenet_transforms",
    "ten_crop_predict",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
# Principal components of ImageNet RGB pixel values (AlexNet [21] colour augmentation), as used by
# the authors' Torch code (fb.resnet.torch, datasets/imagenet.lua).
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


class RandomShorterSideResize(nn.Module):
    """Resize a PIL image so its shorter side is a random integer in [min_size, max_size] (Sec. 3.4
    scale augmentation, [256, 480] in the paper), keeping the aspect ratio."""

    def __init__(self, min_size: int, max_size: int) -> None:
        super().__init__()
        if not 1 <= min_size <= max_size:
            raise ValueError(f"need 1 <= min_size <= max_size; got ({min_size}, {max_size})")
        self.min_size, self.max_size = int(min_size), int(max_size)

    def forward(self, img):
        size = int(torch.randint(self.min_size, self.max_size + 1, ()).item())
        return TF.resize(img, size, antialias=True)

    def extra_repr(self) -> str:
        return f"min_size={self.min_size}, max_size={self.max_size}"


class Lighting(nn.Module):
    """AlexNet-style PCA colour augmentation ([21], Sec. 4.1 there) on a float tensor [3,H,W]:
    add ``eigvec @ (alpha * eigval)`` to every pixel, alpha ~ N(0, alphastd) per image."""

    def __init__(
        self,
        alphastd: float = 0.1,
        eigval: Sequence[float] = IMAGENET_EIGVAL,
        eigvec: Sequence[Sequence[float]] = IMAGENET_EIGVEC,
    ) -> None:
        super().__init__()
        self.alphastd = float(alphastd)
        self.register_buffer("eigval", torch.tensor(eigval, dtype=torch.float32))
        self.register_buffer("eigvec", torch.tensor(eigvec, dtype=torch.float32))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.alphastd == 0:
            return img
        if img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(f"Lighting needs an RGB tensor [3,H,W]; got shape {list(img.shape)}")
        alpha = torch.randn(3) * self.alphastd
        rgb = self.eigvec @ (alpha * self.eigval)
        return img + rgb.to(img.dtype)[:, None, None]

    def extra_repr(self) -> str:
        return f"alphastd={self.alphastd}"


def _to_input(mean: Sequence[float]) -> transforms.Compose:
    """PIL -> float tensor in [0,1] -> mean subtracted (no std division, as in the paper)."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, [1.0] * len(mean))])


class StackCrops(nn.Module):
    """Apply ``to_input`` to each PIL crop of a TenCrop and stack them: [n_crops,C,H,W].
    (A class, not a lambda, so the transform pickles into spawned DataLoader workers.)"""

    def __init__(self, to_input) -> None:
        super().__init__()
        self.to_input = to_input

    def forward(self, crops) -> torch.Tensor:
        return torch.stack([self.to_input(c) for c in crops])


def imagenet_transforms(
    train: bool,
    *,
    scale: tuple[int, int] = (256, 480),
    crop: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    color: bool = True,
):
    """The Sec. 3.4 training transform, or the 10-crop test transform giving a tensor [10,C,crop,crop].

    Test: shorter side resized to ``scale[0]``, then the 4 corner + centre crops and their mirrors
    (``TenCrop``), as in the standard 10-crop testing of [21] used for Table 2.
    """
    lo, hi = scale
    if crop > lo:
        raise ValueError(f"crop {crop} is larger than the smallest shorter side {lo} of scale={scale}")
    if train:
        steps = [
            RandomShorterSideResize(lo, hi),
            transforms.RandomCrop(crop),
            transforms.RandomHorizontalFlip(),
        ]
        steps.append(transforms.ToTensor())
        if color:
            steps.append(Lighting(0.1))
        steps.append(transforms.Normalize(mean, [1.0] * len(mean)))
        return transforms.Compose(steps)
    return transforms.Compose(
        [transforms.Resize(lo, antialias=True), transforms.TenCrop(crop), StackCrops(_to_input(mean))]
    )


def imagenet_folders(root: str | os.PathLike | None) -> tuple[Path, Path]:
    """``(ROOT/train, ROOT/val)``, or DataNotFoundError naming the expected layout."""
    root = resolve_root(root)
    missing = [root / s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        raise DataNotFoundError(
            f"ImageNet-style data not found: missing {', '.join(map(str, missing))}.\n"
            f"Expected class folders {root}/train/<class>/<image> and {root}/val/<class>/<image> "
            f"(e.g. n01440764/ILSVRC2012_val_00000293.JPEG; the ILSVRC2012 validation images must first be "
            f"sorted into class folders). For a CPU stand-in, write one with "
            f"resnetlib.data.export_image_folder(resnetlib.data.load('fashion_mnist'), ROOT)."
        )
    return root / "train", root / "val"


def _seeded_subset(dataset: Dataset, size: int | None, seed: int, stream: int) -> Dataset:
    if size is None or size >= len(dataset):
        return dataset
    if size < 1:
        raise ValueError(f"subset size must be >= 1; got {size}")
    g = torch.Generator().manual_seed(derive_seed(seed, stream, 0))
    return Subset(dataset, torch.randperm(len(dataset), generator=g)[:size].sort().values.tolist())


def imagenet_loaders(
    root: str | os.PathLike | None,
    batch_size: int,
    *,
    workers: int = 4,
    scale: tuple[int, int] = (256, 480),
    crop: int = 224,
    train_size: int | None = None,
    val_size: int | None = None,
    seed: int = 0,
    distributed: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    color: bool = True,
) -> tuple[DataLoader, DataLoader, list[str]]:
    """(train_loader, val_loader, classes) over ``ROOT/train`` and ``ROOT/val`` with the Sec. 3.4 transforms.

    ``batch_size`` is per process. ``train_size``/``val_size`` take a seeded random subset (for CPU runs).
    The train loader drops the last partial batch (a batch of one breaks batch norm); val batches are
    [B,10,C,crop,crop] (10-crop testing, see ``ten_crop_predict``). With ``distributed=True`` both use a
    DistributedSampler (call ``train_loader.sampler.set_epoch(e)`` each epoch; the val sampler pads
    the last share with repeated samples so all ranks have the same count).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    train_set, val_set = _class_folders(root, scale, crop, mean, color)
    train_data = _seeded_subset(train_set, train_size, seed, 7)
    val_data = _seeded_subset(val_set, val_size, seed, 8)
    if len(val_data) == 0:
        raise DataNotFoundError(f"no images found in the class folders of {val_set.root}")
    if len(train_data) < batch_size:
        raise ValueError(f"{len(train_data)} training images are fewer than one batch of {batch_size}")
    train_loader, val_loader = _loaders(train_data, val_data, batch_size, workers, seed, distributed)
    return train_loader, val_loader, list(train_set.classes)


def _class_folders(root, scale: tuple[int, int], crop: int, mean: Sequence[float], color: bool):
    """ImageFolder data sets of ``ROOT/train`` (Sec. 3.4 augmentation) and ``ROOT/val`` (10 crops)."""
    from torchvision.datasets import ImageFolder

    train_dir, val_dir = imagenet_folders(root)
    # allow_empty: a small export may leave a class without images; its folder still fixes the label order
    train_tf = imagenet_transforms(True, scale=scale, crop=crop, mean=mean, color=color)
    train_set = ImageFolder(str(train_dir), transform=train_tf, allow_empty=True)
    val_set = ImageFolder(
        str(val_dir),
        transform=imagenet_transforms(False, scale=scale, crop=crop, mean=mean),
        allow_empty=True,
    )
    if train_set.classes != val_set.classes:
        only_train = sorted(set(train_set.classes) - set(val_set.classes))
        only_val = sorted(set(val_set.classes) - set(train_set.classes))
        raise ValueError(
            f"{train_dir} and {val_dir} must hold the same class folders; "
            f"only in train: {only_train[:5]}, only in val: {only_val[:5]}"
        )
    return train_set, val_set


def _loaders(train_data: Dataset, val_data: Dataset, batch_size: int, workers: int, seed: int,
             distributed: bool) -> tuple[DataLoader, DataLoader]:
    common = {
        "num_workers": workers,
        "pin_memory": torch.cuda.is_available(),
        "persistent_workers": workers > 0,
    }
    if distributed:
        train_sampler = DistributedSampler(train_data, shuffle=True, seed=seed, drop_last=True)
        val_sampler = DistributedSampler(val_data, shuffle=False)
        train_loader = DataLoader(train_data, batch_size, sampler=train_sampler, drop_last=True, **common)
        val_loader = DataLoader(val_data, batch_size, sampler=val_sampler, **common)
    else:
        g = torch.Generator().manual_seed(derive_seed(seed, 9, 0))
        train_loader = DataLoader(train_data, batch_size, shuffle=True, generator=g, drop_last=True, **common)
        val_loader = DataLoader(val_data, batch_size, shuffle=False, **common)
    return train_loader, val_loader


@torch.no_grad()
def ten_crop_predict(model: nn.Module, x10: torch.Tensor) -> torch.Tensor:
    """10-crop prediction (Table 2): softmax averaged over the crops of ``x10`` [B,10,C,H,W], without
    gradients (evaluation only; put the model in eval mode first).

    Returns the log of the averaged probabilities, [B, classes]: logits-like scores whose argmax /
    top-k are the 10-crop prediction and whose ``F.cross_entropy`` is the averaged prediction's NLL.
    """
    if x10.dim() != 5:
        raise ValueError(f"ten_crop_predict needs crops [B,n_crops,C,H,W]; got shape {list(x10.shape)}")
    b, n = x10.shape[:2]
    probs = model(x10.flatten(0, 1)).float().softmax(dim=1)
    return probs.view(b, n, -1).mean(1).clamp_min(torch.finfo(torch.float32).tiny).log()
