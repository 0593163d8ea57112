"""CIFAR-10 (Sec. 4.2): 50k training and 10k test 32x32 colour images in 10 classes.

Read with ``torchvision.datasets.CIFAR10`` from the official pickle release
(``ROOT/cifar-10-batches-py/data_batch_1..5``, ``test_batch``, ``batches.meta``), which verifies
each file's md5 against the official release. Missing files are reported before torchvision is
asked anything; ``download=True`` lets torchvision fetch the archive where the network allows.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .common import DataCorruptError, DataNotFoundError, Split, resolve_root

__all__ = ["FILES", "FOLDER", "URL", "cifar10_folder", "read_cifar10"]

FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


def cifar10_folder(root: str | os.PathLike | None) -> Path:
    """The ``cifar-10-batches-py`` folder for ``root`` (which may also name that folder itself)."""
    root = resolve_root(root)
    return root if root.name == FOLDER else root / FOLDER


def _missing_files(folder: Path) -> list[str]:
    return [name for name in FILES if not (folder / name).is_file()]


def _not_found(folder: Path, missing: list[str], reason: str = "") -> DataNotFoundError:
    what = "the folder does not exist" if not folder.is_dir() else f"missing {', '.join(missing)}"
    return DataNotFoundError(
        f"CIFAR-10 not found in {folder} ({what}).{reason}\n"
        f"To get it: download {URL} and extract it so that {folder}/ holds "
        f"{', '.join(FILES)} (e.g. `tar -xzf cifar-10-python.tar.gz -C {folder.parent}`), "
        f"or pass download=True where the network allows, or pass the root that holds it "
        f"(the default root is $RESNETLIB_DATA or <repo>/data)."
    )


def _torchvision_split(root: Path, train: bool, download: bool):
    from torchvision.datasets import CIFAR10

    return CIFAR10(str(root), train=train, download=download)


def _to_split(dataset) -> Split:
    """torchvision's HWC uint8 ``.data`` and list ``.targets`` -> NCHW uint8 / int64 tensors."""
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    return Split(images, torch.as_tensor(dataset.targets, dtype=torch.int64))


def read_cifar10(
    root: str | os.PathLike | None = None, *, download: bool = False
) -> tuple[Split, Split, list[str], str]:
    """(train, test, classes, source folder) of the full CIFAR-10 release under ``root``."""
    folder = cifar10_folder(root)
    missing = _missing_files(folder)
    if missing:
        if not download:
            raise _not_found(folder, missing)
        try:
            _torchvision_split(folder.parent, True, download=True)
        except Exception as exc:  # network errors come in many types (URLError, RuntimeError, OSError)
            raise _not_found(folder, missing, f" download=True failed: {type(exc).__name__}: {exc}") from exc
    try:
        train = _torchvision_split(folder.parent, True, download=False)
        test = _torchvision_split(folder.parent, False, download=False)
    except RuntimeError as exc:
        raise DataCorruptError(
            f"CIFAR-10 files in {folder} are present but do not match the official release's md5 "
            f"checksums (torchvision: {exc}). Delete the folder and extract {URL} again."
        ) from exc
    return _to_split(train), _to_split(test), list(train.classes), str(folder)
