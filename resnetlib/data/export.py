"""Write a small data set as ImageNet-style class folders, so that e.g. Fashion-MNIST can stand in
for ImageNet (Sec. 3.4 pipeline, ``imagenet_loaders``) in the CPU profile.

Layout: ``ROOT/train/<k>_<class>/<index>.png`` from the training split and ``ROOT/val/...`` from the
*test* split, plus ``ROOT/export.json`` recording the settings. Class folders are named
``<zero-padded label>_<class name>`` so that ImageFolder's alphabetical class order is the label
order and labels round-trip exactly. Every class gets its folder even when a small limit leaves it
without images (read such exports with ``ImageFolder(..., allow_empty=True)``, as ``imagenet_loaders``
does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from PIL import Image

from .common import ImageData, Split, balanced_subset

__all__ = ["class_folder_names", "export_image_folder"]

MARKER = "export.json"
FORMAT_VERSION = 1


def class_folder_names(classes: list[str]) -> list[str]:
    """Folder name per class: '<k>_<name>' with k zero-padded and unsafe characters replaced by '_'."""
    width = len(str(max(len(classes) - 1, 0)))
    return [
        f"{k:0{width}d}_{re.sub(r'[^A-Za-z0-9.-]+', '_', name).strip('_') or 'class'}"
        for k, name in enumerate(classes)
    ]


def _limit(split: Split, limit: int | None) -> Split:
    """A seeded (seed 0), class-balanced subset of ``limit`` samples; the whole split when None."""
    if limit is None or limit >= len(split):
        return split
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"export limits must be positive integers or None; got {limit!r}")
    return split.subset(balanced_subset(split.labels, limit, torch.Generator().manual_seed(0)))


def _to_pil(image: torch.Tensor, size: int | None) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)  # uint8: mode L or RGB
    if size is not None and pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    return pil


def _write_split(split: Split, folder: Path, class_dirs: list[str], size: int | None) -> None:
    for name in class_dirs:
        (folder / name).mkdir(parents=True)
    width = len(str(max(len(split) - 1, 0)))
    for idx, (image, label) in enumerate(zip(split.images, split.labels.tolist())):
        _to_pil(image, size).save(folder / class_dirs[label] / f"{idx:0{width}d}.png")


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def export_image_folder(
    data: ImageData,
    root: str | os.PathLike,
    *,
    image_size: int | None = None,
    train_limit: int | None = None,
    val_limit: int | None = None,
) -> Path:
    """Export ``data`` (train -> ``train/``, test -> ``val/``) as PNG class folders under ``root``.

    ``image_size`` resizes every image to a square of that side (PIL bilinear); the limits take a
    seeded class-balanced subset. Idempotent: a complete export with the same settings is kept as it
    is. The export is written to a temporary sibling folder and renamed into place, so an interrupted
    run never leaves a half export at ``root``. Returns ``root``.
    """
    root = Path(root).expanduser()
    _check_exportable(data, image_size)
    train, val = _limit(data.train, train_limit), _limit(data.test, val_limit)
    settings = {
        "format": FORMAT_VERSION,
        "name": data.name,
        "source": data.source,
        "image_size": image_size,
        "train_limit": train_limit,
        "val_limit": val_limit,
        "train_images": len(train),
        "val_images": len(val),
        "classes": list(data.classes),
    }
    if not _same_export_exists(root, settings):
        _write_export(root, settings, train, val, class_folder_names(data.classes), image_size)
    return root


def _check_exportable(data: ImageData, image_size: int | None) -> None:
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"image_size must be a positive integer or None; got {image_size!r}")
    if data.in_channels not in (1, 3):
        raise ValueError(
            f"can export grey (1) or RGB (3) images only; {data.name} has {data.in_channels} channels"
        )


def _same_export_exists(root: Path, settings: dict) -> bool:
    """True for a complete export with ``settings``; refuses a non-empty folder that is no export."""
    if not root.is_dir():
        return False
    if _read_marker(root) == settings:
        return True
    if _read_marker(root) is None and any(root.iterdir()):
        raise FileExistsError(
            f"{root} exists and is not an export by export_image_folder (no {MARKER}); "
            f"refusing to overwrite it. Choose an empty or new folder."
        )
    return False


def _write_export(root: Path, settings: dict, train, val, class_dirs, image_size: int | None) -> None:
    """Write into a temporary sibling folder, then rename it into place (never a half export at root)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_split(train, tmp / "train", class_dirs, image_size)
        _write_split(val, tmp / "val", class_dirs, image_size)
        (tmp / MARKER).write_text(json.dumps(settings, indent=2))
        if root.exists():  # an older export with other settings, or an empty folder
            shutil.rmtree(root)
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
