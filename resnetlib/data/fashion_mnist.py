"""Fashion-MNIST (Xiao et al. 2017): 60k training and 10k test 28x28 grey images in 10 classes.

The CPU stand-in for CIFAR-10 in the ``smoke`` and ``cpu`` profiles. Files are the IDX release
(``train-images-idx3-ubyte.gz`` ... , gzipped or not), looked for in this order:

1. the root the caller names: the files directly in it, or in ``ROOT/FashionMNIST/raw/``
   (torchvision's layout); with no root, the default root ($RESNETLIB_DATA or ``<repo>/data``);
2. Debian's ``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``);
3. only with ``download=True``: ``torchvision.datasets.FashionMNIST(root, download=True)``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from .common import DataCorruptError, DataNotFoundError, Split, resolve_root

__all__ = ["CLASSES", "DEBIAN_FOLDER", "FILES", "find_fashion_mnist", "read_fashion_mnist", "read_idx"]

CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # IDX: 0x00 0x00 <0x08 = uint8> <number of dimensions>


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """An IDX file (gzipped if its name ends in .gz) as a uint8 array; DataCorruptError if it is not one.

    ``magic`` is the expected first 4 bytes as a big-endian int: 2051 for images [N,H,W], 2049 for
    labels [N].
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataCorruptError(f"{path}: cannot be read as a gzipped IDX file ({exc})") from exc
    if len(raw) < 4:
        raise DataCorruptError(f"{path}: only {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataCorruptError(
            f"{path}: IDX magic number is {found}, expected {magic} "
            f"({'images' if magic == IMAGES_MAGIC else 'labels'}); "
            "the file is corrupt or not this kind of file"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataCorruptError(
            f"{path}: header says shape {dims} ({expected} bytes) but the file holds {len(raw)} bytes "
            "(truncated?)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _complete(folder: Path) -> bool:
    return all(_file_in(folder, stem) is not None for stem in FILES.values())


def candidate_folders(root: str | os.PathLike | None) -> list[Path]:
    """Every folder looked in, in order."""
    base = resolve_root(root)
    return [base, base / "FashionMNIST" / "raw", DEBIAN_FOLDER]


def find_fashion_mnist(root: str | os.PathLike | None = None) -> Path | None:
    """The first candidate folder holding all four IDX files, or None."""
    return next((folder for folder in candidate_folders(root) if _complete(folder)), None)


def _not_found(root: str | os.PathLike | None, reason: str = "") -> DataNotFoundError:
    looked = "\n  ".join(str(f) for f in candidate_folders(root))
    files = ", ".join(f"{stem}.gz" for stem in FILES.values())
    return DataNotFoundError(
        f"Fashion-MNIST not found; looked for {files} in:\n  {looked}\n{reason}"
        f"To get it: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, installs {DEBIAN_FOLDER}), "
        f"or pass download=True where the network allows (torchvision saves it under ROOT/FashionMNIST/raw), "
        f"or put the four files in the root you pass."
    )


def _download(root: str | os.PathLike | None) -> None:
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(resolve_root(root)), train=True, download=True)
    except Exception as exc:  # network errors come in many types (URLError, RuntimeError, OSError)
        raise _not_found(root, f"download=True failed: {type(exc).__name__}: {exc}\n") from exc


def _read_split(folder: Path, prefix: str) -> Split:
    images = read_idx(_file_in(folder, FILES[f"{prefix}_images"]), IMAGES_MAGIC)
    labels = read_idx(_file_in(folder, FILES[f"{prefix}_labels"]), LABELS_MAGIC)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataCorruptError(
            f"{folder}: {prefix} images have shape {list(images.shape)} and labels {list(labels.shape)}; "
            f"expected [N,28,28] and [N]"
        )
    if len(labels) and int(labels.max()) >= len(CLASSES):
        raise DataCorruptError(f"{folder}: {prefix} labels go up to {int(labels.max())}, expected 0..9")
    return Split(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


def read_fashion_mnist(
    root: str | os.PathLike | None = None, *, download: bool = False
) -> tuple[Split, Split, list[str], str]:
    """(train, test, classes, source folder) of the full Fashion-MNIST release."""
    folder = find_fashion_mnist(root)
    if folder is None:
        if not download:
            raise _not_found(root)
        _download(root)
        folder = find_fashion_mnist(root)
        if folder is None:
            raise _not_found(root, "download=True finished but the files are still missing.\n")
    return _read_split(folder, "train"), _read_split(folder, "test"), list(CLASSES), str(folder)
