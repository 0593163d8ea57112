"""Session-wide test settings: temporary run and report folders, one compute thread per xdist worker, the
order in which files are handed to the workers, and one tiny training run shared by the tests that need a
finished run (instead of each training the same one).

- ``$RESNETLIB_RUNS_DIR`` and ``$RESNETLIB_REPORTS_DIR`` point at a fresh temporary folder of this pytest
  process (set in ``pytest_configure``, before any test module is imported, so that papermill kernels,
  torchrun and CLI subprocesses inherit them): a test run never writes into the checkout's ``runs/`` or
  ``reports/interactive/`` and never reuses a run trained before the session. Values set outside are
  overridden on purpose (tests are hermetic) and restored at the end.
- Under pytest-xdist (``make test`` runs ``pytest -n 2 --dist loadfile --no-loadscope-reorder``) each
  worker computes with one thread (``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1`` for its
  subprocesses): two workers with two threads each on a 2-core machine slow each other down far more
  than 2x.
- ``writers``: tiny data sets in the real on-disk layouts (CIFAR-10 python pickles, Fashion-MNIST IDX, ImageNet
  class folders of JPEGs, PASCAL VOC XML, COCO JSON), so loaders and the paper profile's notebooks read the
  same bytes they read in production.
- Test files with more ``slow`` tests come first (the smoke run of every notebook is the longest file,
  about half of the suite): with ``--no-loadscope-reorder`` xdist hands files out in this order, so one
  worker starts the long file at once while the other takes the rest (by default xdist orders files by
  their number of tests, which would start the long file late).
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import struct
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FOLDER_VARIABLES = ("RESNETLIB_RUNS_DIR", "RESNETLIB_REPORTS_DIR")
_saved: dict[str, str | None] = {}
_session_folder: Path | None = None

#: The tiny training run of ``tiny_run`` (cifar_resnet8 on 256 synthetic images, 24 iterations): the
#: ``TINY`` overrides of tests/train/test_loop.py, whose ``trained`` fixture checks that the two agree.
TINY_TRAINING = (
    "model.name=cifar_resnet8", "data.name=synthetic", "data.train_size=256", "data.test_size=64",
    "optim.batch_size=32", "optim.iterations=24", "optim.milestones=[16]", "eval_every=8",
    "checkpoint_every=4", "eval_batch_size=64", "deterministic=true", "threads=1", "log=none", "device=cpu",
)


def pytest_configure(config: pytest.Config) -> None:
    global _session_folder
    _session_folder = Path(tempfile.mkdtemp(prefix="resnetlib-tests-"))
    for name, sub in zip(FOLDER_VARIABLES, ("runs", "reports")):
        _saved[name] = os.environ.get(name)
        os.environ[name] = str(_session_folder / sub)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if _session_folder is not None:
        shutil.rmtree(_session_folder, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: the order inside a file is kept


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished ``fit`` of the tiny configuration, trained once per pytest process: tests read its
    folder (config, metrics, checkpoint, summary) and compare against its weights; a test that needs to
    change a run folder copies it first (``shutil.copytree(tiny_run.run_dir, tmp_path / "run")``)."""
    from resnetlib.train import fit, load_config

    return fit(load_config(None, list(TINY_TRAINING)), tmp_path_factory.mktemp("tiny") / "run")


# --------------------------------------------------------------------------------------------- data layouts
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


#: Ten of PASCAL VOC's 20 classes (resnetlib.detection.data.VOC_CLASSES).
VOC_OBJECTS = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow")


def _scene(rng: np.random.Generator, side: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A noisy ``side`` x ``side`` RGB image with one or two bright boxes; their (x1, y1, x2, y2) in pixels."""
    pixels = rng.integers(0, 64, (side, side, 3), dtype=np.uint8)
    boxes = []
    for _ in range(int(rng.integers(1, 3))):
        w, h = (int(v) for v in rng.integers(side // 4, side // 2, 2))
        x1, y1 = int(rng.integers(0, side - w)), int(rng.integers(0, side - h))
        pixels[y1:y1 + h, x1:x1 + w] = rng.integers(128, 256, 3, dtype=np.uint8)
        boxes.append((x1, y1, x1 + w, y1 + h))
    return Image.fromarray(pixels), boxes


def _voc_xml(year: str, name: str, side: int, objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    """An annotation as VOC ships it: 1-based inclusive pixel boxes."""
    body = "".join(
        f"\n\t<object>\n\t\t<name>{label}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>"
        f"\n\t\t<difficult>0</difficult>\n\t\t<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>\n\t</object>"
        for label, (x1, y1, x2, y2) in objects
    )
    return (f"<annotation>\n\t<folder>VOC{year}</folder>\n\t<filename>{name}.jpg</filename>\n\t<size><width>{side}"
            f"</width><height>{side}</height><depth>3</depth></size>\n\t<segmented>0</segmented>{body}\n</annotation>\n")


def write_voc(root: Path, image_sets: dict[str, tuple[str, ...]] | None = None, per_set: int = 4, side: int = 64,
              seed: int = 0) -> Path:
    """``root/VOCdevkit/VOC<year>/{JPEGImages,Annotations,ImageSets/Main}`` with ``per_set`` JPEGs per image set;
    ``image_sets``: year -> image set names (default: the 07+12 protocol's 2007 trainval/test and 2012 trainval)."""
    rng = np.random.default_rng(seed)
    for year, sets in (image_sets or {"2007": ("trainval", "test"), "2012": ("trainval",)}).items():
        base = root / "VOCdevkit" / f"VOC{year}"
        for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for image_set in sets:
            names = [f"{year}_{image_set}_{i:04d}" for i in range(per_set)]
            for name in names:
                image, boxes = _scene(rng, side)
                image.save(base / "JPEGImages" / f"{name}.jpg", format="JPEG")
                labels = [VOC_OBJECTS[int(rng.integers(len(VOC_OBJECTS)))] for _ in boxes]
                (base / "Annotations" / f"{name}.xml").write_text(_voc_xml(year, name, side, list(zip(labels, boxes))))
            (base / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(names) + "\n")
    return root


def write_coco(root: Path, year: str = "2014", per_split: int = 4, side: int = 64, seed: int = 0) -> Path:
    """``root/coco/{train<year>,val<year>}/*.jpg`` and ``annotations/instances_{train,val}<year>.json``
    (xywh boxes, COCO's sparse category ids)."""
    rng = np.random.default_rng(seed)
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]
    (root / "coco" / "annotations").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        folder = root / "coco" / f"{split}{year}"
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(per_split):
            image, boxes = _scene(rng, side)
            name = f"COCO_{split}{year}_{i:012d}.jpg"
            image.save(folder / name, format="JPEG")
            images.append({"id": i + 1, "file_name": name, "width": side, "height": side})
            for x1, y1, x2, y2 in boxes:
                category = categories[int(rng.integers(len(categories)))]["id"]
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": category,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        instances = {"images": images, "annotations": annotations, "categories": categories}
        (root / "coco" / "annotations" / f"instances_{split}{year}.json").write_text(json.dumps(instances))
    return root


@pytest.fixture(scope="session")
def writers():
    """The format writers above, as a fixture (test modules never import conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        cifar10=write_cifar10,
        idx=write_idx,
        fashion_mnist=write_fashion_mnist,
        jpeg_folders=write_jpeg_folders,
        voc=write_voc,
        coco=write_coco,
    )
