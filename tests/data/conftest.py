"""Writers for tiny data sets in the real on-disk formats (CIFAR-10 pickles, Fashion-MNIST IDX,
JPEG class folders), so the loaders are tested on the same bytes they read in production."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Py2Str(str):
    """A Python 2 ``str``: the CIFAR-10 pickles were written by Python 2's cPickle, whose keys are
    byte strings (``b"data"`` when loaded with ``encoding="bytes"``, ``"data"`` with ``"latin1"``)."""


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that writes ``Py2Str`` as the BINSTRING opcodes Python 2 wrote."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2str(self, obj: Py2Str) -> None:
        data = obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[Py2Str] = save_py2str


def _py2_dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def unique_images(n: int, shape: tuple[int, ...], rng: np.random.Generator, offset: int = 0) -> np.ndarray:
    """Random uint8 images [n,*shape] whose first two bytes encode the sample number (so they differ)."""
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = images.reshape(n, -1)
    ids = np.arange(offset, offset + n)
    flat[:, 0], flat[:, 1] = ids // 256, ids % 256
    return images


def write_cifar10(root: Path, per_batch: int = 20, test: int = 20, seed: int = 0) -> dict:
    """A tiny ``root/cifar-10-batches-py`` in the official format; returns the arrays written (NCHW)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {"train_images": [], "train_labels": []}
    for b in range(1, 6):
        images = unique_images(per_batch, (3, 32, 32), rng, offset=(b - 1) * per_batch)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        _py2_dump(
            {
                Py2Str("batch_label"): Py2Str(f"training batch {b} of 5"),
                Py2Str("labels"): labels,
                Py2Str("data"): images.reshape(per_batch, 3072),  # rows: 1024 R, 1024 G, 1024 B
                Py2Str("filenames"): [Py2Str(f"img_{b}_{i}.png") for i in range(per_batch)],
            },
            folder / f"data_batch_{b}",
        )
        written["train_images"].append(images)
        written["train_labels"] += labels
    test_images = unique_images(test, (3, 32, 32), rng, offset=10_000)
    test_labels = [int(v) for v in rng.integers(0, 10, test)]
    _py2_dump(
        {
            Py2Str("batch_label"): Py2Str("testing batch 1 of 1"),
            Py2Str("labels"): test_labels,
            Py2Str("data"): test_images.reshape(test, 3072),
            Py2Str("filenames"): [Py2Str(f"test_{i}.png") for i in range(test)],
        },
        folder / "test_batch",
    )
    _py2_dump(
        {
            Py2Str("num_cases_per_batch"): per_batch,
            Py2Str("label_names"): [Py2Str(c) for c in CIFAR_CLASSES],
            Py2Str("num_vis"): 3072,
        },
        folder / "batches.meta",
    )
    written["train_images"] = np.concatenate(written["train_images"])
    written["test_images"], written["test_labels"] = test_images, test_labels
    written["folder"] = folder
    return written


@pytest.fixture
def skip_cifar_md5(monkeypatch):
    """Our tiny files cannot match the official md5 sums that torchvision checks
    (``CIFAR10._check_integrity`` and ``_load_meta`` via ``cifar.check_integrity``); in tests only,
    accept any existing file."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool = True) -> None:
    """Write ``array`` (uint8) as an IDX file: magic (0x0000 08 ndim) big-endian, dims, then the bytes."""
    assert array.dtype == np.uint8 and magic & 0xFF == array.ndim
    payload = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def write_fashion_mnist(
    folder: Path, n_train: int = 200, n_test: int = 50, seed: int = 0, compress: bool = True
) -> dict:
    """The four Fashion-MNIST IDX files, tiny, in ``folder``; labels cycle through all 10 classes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": unique_images(n_train, (28, 28), rng),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": unique_images(n_test, (28, 28), rng, offset=50_000),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    suffix = ".gz" if compress else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", arrays["train_images"], 2051, compress)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", arrays["train_labels"], 2049, compress)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", arrays["test_images"], 2051, compress)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", arrays["test_labels"], 2049, compress)
    return arrays


def write_jpeg_folders(root: Path, classes=("cat", "dog"), per_class: int = 4, seed: int = 0) -> Path:
    """``root/{train,val}/<class>/<i>.JPEG`` with small random RGB and grey JPEGs of varied sizes."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                h, w = int(rng.integers(36, 60)), int(rng.integers(36, 60))
                if i % 2:
                    img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))  # grey ("L")
                else:
                    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
                img.save(root / split / c / f"{i}.JPEG", format="JPEG")
    return root


@pytest.fixture
def no_debian_fashion(monkeypatch, tmp_path):
    """Hide /usr/share/datasets/fashion-mnist so look-ups only see the test's folders."""
    from resnetlib.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "no-debian-here")


@pytest.fixture
def fake_fashion(tmp_path, no_debian_fashion):
    """(root, arrays) of a tiny Fashion-MNIST written directly in ``root``."""
    root = tmp_path / "fmnist"
    return root, write_fashion_mnist(root)


@pytest.fixture
def writers():
    """The format writers above, as a fixture (test modules never import conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        cifar10=write_cifar10,
        idx=write_idx,
        fashion_mnist=write_fashion_mnist,
        jpeg_folders=write_jpeg_folders,
    )
