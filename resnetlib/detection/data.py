"""Detection data: COCO-format and PASCAL VOC loaders, and the Fashion-MNIST scene set.

Every data set yields ``(image, target)``: ``image`` float32 [C,H,W] in [0,1]; ``target`` a dict with
``boxes`` float32 [N,4] (x1, y1, x2, y2, continuous pixel coordinates), ``labels`` int64 [N]
(contiguous 1..K, 0 is background), ``image_id`` int and, for VOC, ``difficult`` bool [N].

The scene set ("Fashion-MNIST scenes (synthetic layout of real items)") is written to disk as PNG
images plus COCO instances JSON, so it goes through the very same COCO loading and evaluation path as
COCO itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset

from ..data import load as load_image_data
from ..data.common import resolve_root
from .config import LOCALIZATION_DATA, CocoData, DatasetInfo, DetectionData, ScenesData, VOCData

__all__ = [
    "SCENES_LABEL",
    "VOC_CLASSES",
    "CocoDetectionDataset",
    "DatasetInfo",
    "VOCDetectionDataset",
    "collate",
    "hflip",
    "make_scene_dataset",
    "open_datasets",
]

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

SCENES_LABEL = "Fashion-MNIST scenes (synthetic layout of real items)"


def collate(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """DataLoader collate for detection: lists of images and targets (images differ in size)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


def hflip(image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Mirror an image and its boxes left-right (the paper's only training augmentation)."""
    width = image.shape[-1]
    target = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    target["boxes"] = boxes
    return image.flip(-1), target


def _to_tensor(img: Image.Image, mode: str) -> torch.Tensor:
    arr = np.asarray(img.convert(mode), dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


# -------------------------------------------------------------------------------------------- COCO


class CocoDetectionDataset(Dataset):
    """Images and boxes from a COCO instances JSON and its image folder (pycocotools underneath).

    Crowd annotations and boxes of zero width or height are dropped. COCO category ids (not contiguous
    in COCO itself) map to labels 1..K in sorted id order: ``cat_to_label`` / ``label_to_cat``;
    ``classes[label]`` is the name (``classes[0] == "__background__"``). ``coco`` is the pycocotools
    ``COCO`` object the evaluation compares against. ``mode``: "RGB" (3 channels) or "L" (grayscale).
    """

    def __init__(self, images_dir: str | Path, annotation_file: str | Path, *, mode: str = "RGB") -> None:
        from pycocotools.coco import COCO

        self.images_dir, self.annotation_file = Path(images_dir), Path(annotation_file)
        if not self.annotation_file.is_file():
            raise FileNotFoundError(
                f"COCO annotation file not found: {self.annotation_file}. Expected the COCO layout "
                "<root>/annotations/instances_<split>.json and <root>/<split>/ images (from "
                "https://cocodataset.org/#download), or a scene set written by make_scene_dataset."
            )
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"COCO image folder not found: {self.images_dir}")
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
        self.mode = mode
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco = COCO(str(self.annotation_file))
        cat_ids = sorted(self.coco.getCatIds())
        self.cat_to_label = {cid: i + 1 for i, cid in enumerate(cat_ids)}
        self.label_to_cat = {v: k for k, v in self.cat_to_label.items()}
        self.classes = ["__background__"] + [self.coco.loadCats(c)[0]["name"] for c in cat_ids]
        self.ids = sorted(self.coco.getImgIds())

    @property
    def num_classes(self) -> int:
        """Object classes + 1 (background), what ``build_detector`` takes."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.ids)

    def target(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id))
        boxes, labels = [], []
        for a in anns:
            if a.get("iscrowd", 0):
                continue
            x, y, w, h = a["bbox"]
            if w <= 0 or h <= 0:
                continue
            boxes.append([x, y, x + w, y + h])
            labels.append(self.cat_to_label[a["category_id"]])
        return {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": int(image_id),
        }

    def image_path(self, index: int) -> Path:
        return self.images_dir / self.coco.loadImgs(self.ids[index])[0]["file_name"]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        with Image.open(self.image_path(index)) as img:
            image = _to_tensor(img, self.mode)
        return image, self.target(index)


# --------------------------------------------------------------------------------------------- VOC


def _voc_folder(root: Path, year: str) -> Path:
    for candidate in (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}", root):
        if (candidate / "Annotations").is_dir() and (candidate / "JPEGImages").is_dir():
            return candidate
    raise FileNotFoundError(
        f"PASCAL VOC {year} not found under {root}. Expected the VOCdevkit layout "
        f"{root}/VOCdevkit/VOC{year}/{{JPEGImages,Annotations,ImageSets/Main}} (as torchvision's "
        "VOCDetection uses): download VOCtrainval (and VOCtest for 2007) from "
        "http://host.robots.ox.ac.uk/pascal/VOC/ and extract the tar files into that folder."
    )


class VOCDetectionDataset(Dataset):
    """PASCAL VOC detection from the VOCdevkit layout, the XML parsed into boxes and labels.

    ``root`` holds ``VOCdevkit/VOC<year>`` (or is that folder). ``image_set``: "train", "val",
    "trainval" or "test" (a file in ImageSets/Main). Labels are 1..20 in ``VOC_CLASSES`` order; the
    target's ``difficult`` flags are kept (the VOC metric ignores those boxes). With
    ``keep_difficult=False`` difficult boxes are dropped, as py-faster-rcnn does for training.
    VOC's 1-based inclusive pixel boxes become continuous ones: (xmin - 1, ymin - 1, xmax, ymax).
    """

    classes = ("__background__",) + VOC_CLASSES
    num_classes = len(VOC_CLASSES) + 1

    def __init__(
        self,
        root: str | Path,
        year: str = "2007",
        image_set: str = "trainval",
        *,
        keep_difficult: bool = True,
    ) -> None:
        self.folder = _voc_folder(Path(root), str(year))
        split_file = self.folder / "ImageSets" / "Main" / f"{image_set}.txt"
        if not split_file.is_file():
            raise FileNotFoundError(
                f"VOC image set file not found: {split_file} (image_set must be one of the lists in "
                f"{split_file.parent}; the test list of VOC2007 comes with VOCtest_06-Nov-2007.tar)"
            )
        self.names = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
        self.keep_difficult = keep_difficult
        self.year, self.image_set = str(year), image_set
        self.label_to_cat = {i: i for i in range(1, self.num_classes)}

    def __len__(self) -> int:
        return len(self.names)

    def target(self, index: int) -> dict[str, Any]:
        return parse_voc_xml(
            self.folder / "Annotations" / f"{self.names[index]}.xml",
            image_id=index,
            keep_difficult=self.keep_difficult,
        )

    def image_path(self, index: int) -> Path:
        return self.folder / "JPEGImages" / f"{self.names[index]}.jpg"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        with Image.open(self.image_path(index)) as img:
            image = _to_tensor(img, "RGB")
        return image, self.target(index)


def parse_voc_xml(path: str | Path, *, image_id: int = 0, keep_difficult: bool = True) -> dict[str, Any]:
    """One VOC annotation file -> target dict (boxes, labels, difficult, image_id)."""
    root = ET.parse(path).getroot()
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        name = obj.findtext("name", "").strip().lower()
        if name not in VOC_CLASSES:
            raise ValueError(f"{path}: unknown VOC class {name!r}")
        diff = obj.findtext("difficult", "0").strip() == "1"
        if diff and not keep_difficult:
            continue
        bb = obj.find("bndbox")
        xmin, ymin, xmax, ymax = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([xmin - 1, ymin - 1, xmax, ymax])
        labels.append(VOC_CLASSES.index(name) + 1)
        difficult.append(diff)
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "difficult": torch.tensor(difficult, dtype=torch.bool),
        "image_id": int(image_id),
    }


# ------------------------------------------------------------------------------ Fashion-MNIST scenes


def _fashion_mnist(
    data_root: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], str]:
    """(train images uint8 [N,28,28], train labels, test images, test labels, class names, source)."""
    d = load_image_data("fashion_mnist", data_root or None)
    return (
        d.train.images[:, 0].numpy(),
        d.train.labels.numpy(),
        d.test.images[:, 0].numpy(),
        d.test.labels.numpy(),
        list(d.classes),
        str(d.source),
    )


def _place(
    rng: np.random.Generator,
    canvas: int,
    size: tuple[int, int],
    taken: list[tuple[int, int, int, int]],
    gap: int,
) -> tuple[int, int] | None:
    h, w = size
    for _ in range(50):
        y, x = int(rng.integers(0, canvas - h + 1)), int(rng.integers(0, canvas - w + 1))
        if all(
            x + w + gap <= a or a2 + gap <= x or y + h + gap <= b or b2 + gap <= y for a, b, a2, b2 in taken
        ):
            return y, x
    return None


def _render_split(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    *,
    canvas: int,
    items_per_image: tuple[int, int],
    scale_range: tuple[float, float],
    rng: np.random.Generator,
    out_dir: Path,
    prefix: str,
    classes: list[str],
) -> dict[str, Any]:
    """Render ``n`` scenes as PNG files into ``out_dir``; returns their COCO instances dict."""
    out_dir.mkdir(parents=True, exist_ok=True)
    coco_images, annotations = [], []
    for i in range(n):
        scene, boxes = _render_scene(images, labels, rng, canvas, items_per_image, scale_range)
        image_id = i + 1
        for bbox, label in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": bbox,
                    "area": float(bbox[2] * bbox[3]),
                    "iscrowd": 0,
                }
            )
        name = f"{prefix}_{i:06d}.png"
        Image.fromarray(scene).save(out_dir / name)
        coco_images.append({"id": image_id, "file_name": name, "width": canvas, "height": canvas})
    categories = [{"id": c + 1, "name": name} for c, name in enumerate(classes)]
    return {
        "info": {"description": SCENES_LABEL},
        "images": coco_images,
        "annotations": annotations,
        "categories": categories,
    }


def _render_scene(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    canvas: int,
    items_per_image: tuple[int, int],
    scale_range: tuple[float, float],
) -> tuple[np.ndarray, list[tuple[list[int], int]]]:
    """One scene: ``items_per_image`` items placed without overlap; (image, [(xywh box, class)])."""
    scene = np.zeros((canvas, canvas), dtype=np.uint8)
    taken: list[tuple[int, int, int, int]] = []
    boxes = []
    for _ in range(int(rng.integers(items_per_image[0], items_per_image[1] + 1))):
        j = int(rng.integers(0, len(images)))
        item = _scaled_item(images[j], rng, scale_range, canvas)
        pos = None if item is None else _place(rng, canvas, item.shape, taken, gap=1)
        if pos is None:
            continue
        (y, x), (h, w) = pos, item.shape
        scene[y : y + h, x : x + w] = item
        taken.append((x, y, x + w, y + h))
        boxes.append(([x, y, w, h], int(labels[j])))
    return scene, boxes


def _scaled_item(image: np.ndarray, rng: np.random.Generator, scale_range, canvas: int) -> np.ndarray | None:
    """A 28 px item scaled by a factor drawn from ``scale_range``, cropped to its nonzero pixels."""
    side = round(28 * rng.uniform(*scale_range))
    side = max(8, min(side, canvas))
    item = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))
    ys, xs = np.nonzero(item)
    if len(ys) == 0:
        return None
    return item[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def make_scene_dataset(
    root: str | Path,
    *,
    num_train: int,
    num_test: int,
    canvas: int = 128,
    items_per_image: tuple[int, int] = (2, 4),
    scale_range: tuple[float, float] = (1.0, 2.5),
    seed: int = 0,
    data_root: str | None = None,
) -> dict[str, Path]:
    """Write the Fashion-MNIST scene set under ``root``; returns its paths.

    Each scene is a black ``canvas`` x ``canvas`` grayscale image holding ``items_per_image`` real
    Fashion-MNIST items (training scenes from the Fashion-MNIST training images, test scenes from its
    test images), each resized by a factor in ``scale_range`` of 28 px, placed at random without
    overlap (1 px gap); the box is the tight box of the item's nonzero pixels, so it is exact. Written
    as ``root/images/*.png`` + COCO instances ``root/train.json`` and ``root/test.json`` (category ids
    1..10 = Fashion-MNIST classes) + ``root/manifest.json`` (configuration, Fashion-MNIST source).
    Idempotent: an existing set with the same configuration is reused. Fashion-MNIST is read with
    ``resnetlib.data.load("fashion_mnist", data_root)``.
    """
    _check_scene_arguments(num_train, num_test, canvas, items_per_image, scale_range)
    root = Path(root)
    lo, hi = items_per_image
    config = {
        "version": 1,
        "num_train": num_train,
        "num_test": num_test,
        "canvas": canvas,
        "items_per_image": [lo, hi],
        "scale_range": [float(s) for s in scale_range],
        "seed": seed,
    }
    paths = {
        "root": root,
        "images": root / "images",
        "train": root / "train.json",
        "test": root / "test.json",
        "manifest": root / "manifest.json",
    }
    if _scene_set_exists(paths, config):
        return paths
    tr_x, tr_y, te_x, te_y, classes, source = _fashion_mnist(data_root)
    rng = np.random.default_rng(seed)
    common = {
        "canvas": canvas,
        "items_per_image": (lo, hi),
        "scale_range": tuple(scale_range),
        "out_dir": paths["images"],
        "classes": classes,
    }
    train = _render_split(tr_x, tr_y, num_train, rng=rng, prefix="train", **common)
    test = _render_split(te_x, te_y, num_test, rng=rng, prefix="test", **common)
    _write_scene_set(paths, train, test, config, source)
    return paths


def _check_scene_arguments(num_train: int, num_test: int, canvas: int, items_per_image, scale_range) -> None:
    lo, hi = items_per_image
    if not (1 <= lo <= hi):
        raise ValueError(f"items_per_image must be (min, max) with 1 <= min <= max, got {items_per_image}")
    if not (0 < scale_range[0] <= scale_range[1]) or 28 * scale_range[1] > canvas:
        raise ValueError(f"scale_range {scale_range} must be positive and fit 28*max into canvas {canvas}")
    if num_train < 1 or num_test < 1:
        raise ValueError("num_train and num_test must be >= 1")


def _scene_set_exists(paths: dict[str, Path], config: dict[str, Any]) -> bool:
    manifest = paths["manifest"]
    complete = manifest.is_file() and paths["train"].is_file() and paths["test"].is_file()
    return complete and json.loads(manifest.read_text()).get("config") == config


def _write_scene_set(paths: dict[str, Path], train: dict, test: dict, config: dict, source: str) -> None:
    """The two COCO files (each written whole, then renamed), then the manifest: the set is complete."""
    for key, content in (("train", train), ("test", test)):
        tmp = paths[key].with_suffix(".json.tmp")
        tmp.write_text(json.dumps(content))
        tmp.replace(paths[key])
    digest = hashlib.sha1(paths["test"].read_bytes()).hexdigest()[:12]
    manifest = {"label": SCENES_LABEL, "config": config, "source": source, "test_sha1": digest}
    paths["manifest"].write_text(json.dumps(manifest, indent=2))


# ------------------------------------------------------------------------- data sets of a config


def open_datasets(data: DetectionData, seed: int, cache_dir: str | Path) -> tuple[Any, Any, DatasetInfo]:
    """(train set, test set, info) of ``data``; scene sets are written once under ``cache_dir``."""
    if data.name in LOCALIZATION_DATA:
        from ..localization.data import localization_sets  # it builds on this module

        return localization_sets(data, seed, cache_dir)
    if isinstance(data, ScenesData):
        return _scene_sets(data, seed, Path(cache_dir))
    if isinstance(data, VOCData):
        return _voc_sets(data)
    return _coco_sets(data)


def _scene_sets(data: ScenesData, seed: int, cache_dir: Path) -> tuple[Any, Any, DatasetInfo]:
    config = {
        "num_train": data.num_train,
        "num_test": data.num_test,
        "canvas": data.canvas,
        "items_per_image": tuple(data.items_per_image),
        "scale_range": tuple(data.scale_range),
        "seed": seed,
    }
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    root = cache_dir / f"scenes-{digest}"
    paths = make_scene_dataset(root, data_root=data.root or None, **config)
    train = CocoDetectionDataset(paths["images"], paths["train"], mode="L")
    test = CocoDetectionDataset(paths["images"], paths["test"], mode="L")
    source = json.loads(paths["manifest"].read_text()).get("source", "")
    # Normalise by the training scenes' pixel mean/std (Sec. 4.2 subtracts the mean pixel).
    sample = torch.stack([train[i][0] for i in range(min(len(train), 256))])
    mean, std = [float(sample.mean())], [float(sample.std())]
    return train, test, DatasetInfo(SCENES_LABEL, f"{source} -> {root}", 1, train.classes, mean, std)


#: voc07 / voc12: the (year, image set) lists trained on, the one tested on, and the report's label.
VOC_PROTOCOLS = {
    "voc07": (
        [("2007", "trainval"), ("2012", "trainval")],
        ("2007", "test"),
        "PASCAL VOC 2007 test (trained on 07+12 trainval)",
    ),
    "voc12": (
        [("2007", "trainval"), ("2007", "test"), ("2012", "train")],
        ("2012", "val"),
        "PASCAL VOC 2012 val (trained on 07 trainval+test + 12 train)",
    ),
}


def _voc_sets(data: VOCData) -> tuple[Any, Any, DatasetInfo]:
    root = resolve_root(data.root)
    parts, (year, image_set), label = VOC_PROTOCOLS[data.name]
    test = VOCDetectionDataset(root, year, image_set, keep_difficult=True)
    train = ConcatDataset([VOCDetectionDataset(root, y, s, keep_difficult=False) for y, s in parts])
    return train, test, DatasetInfo(label, str(root), 3, list(VOCDetectionDataset.classes), None, None)


def _coco_sets(data: CocoData) -> tuple[Any, Any, DatasetInfo]:
    root, year = resolve_root(data.root) / "coco", data.year
    ann = root / "annotations"
    train = CocoDetectionDataset(root / f"train{year}", ann / f"instances_train{year}.json")
    test = CocoDetectionDataset(root / f"val{year}", ann / f"instances_val{year}.json")
    label = f"COCO {year} val (trained on train{year})"
    return train, test, DatasetInfo(label, str(root), 3, train.classes, None, None)
