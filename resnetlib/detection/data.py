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
from torch.utils.data import Dataset

from ..data import load as load_image_data

__all__ = [
    "SCENES_LABEL",
    "VOC_CLASSES",
    "CocoDetectionDataset",
    "VOCDetectionDataset",
    "collate",
    "hflip",
    "make_scene_dataset",
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
    out_dir.mkdir(parents=True, exist_ok=True)
    coco_images, annotations = [], []
    ann_id = 1
    for i in range(n):
        scene = np.zeros((canvas, canvas), dtype=np.uint8)
        taken: list[tuple[int, int, int, int]] = []
        k = int(rng.integers(items_per_image[0], items_per_image[1] + 1))
        image_id = i + 1
        for _ in range(k):
            j = int(rng.integers(0, len(images)))
            side = round(28 * rng.uniform(*scale_range))
            side = max(8, min(side, canvas))
            item = np.asarray(Image.fromarray(images[j]).resize((side, side), Image.BILINEAR))
            ys, xs = np.nonzero(item)
            if len(ys) == 0:
                continue
            item = item[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]  # tight crop: exact box
            pos = _place(rng, canvas, item.shape, taken, gap=1)
            if pos is None:
                continue
            y, x = pos
            h, w = item.shape
            scene[y : y + h, x : x + w] = item
            taken.append((x, y, x + w, y + h))
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": int(labels[j]) + 1,
                    "bbox": [x, y, w, h],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
            ann_id += 1
        name = f"{prefix}_{i:06d}.png"
        Image.fromarray(scene).save(out_dir / name)
        coco_images.append({"id": image_id, "file_name": name, "width": canvas, "height": canvas})
    return {
        "info": {"description": SCENES_LABEL},
        "images": coco_images,
        "annotations": annotations,
        "categories": [{"id": c + 1, "name": name} for c, name in enumerate(classes)],
    }


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
    lo, hi = items_per_image
    if not (1 <= lo <= hi):
        raise ValueError(f"items_per_image must be (min, max) with 1 <= min <= max, got {items_per_image}")
    if not (0 < scale_range[0] <= scale_range[1]) or 28 * scale_range[1] > canvas:
        raise ValueError(f"scale_range {scale_range} must be positive and fit 28*max into canvas {canvas}")
    if num_train < 1 or num_test < 1:
        raise ValueError("num_train and num_test must be >= 1")
    root = Path(root)
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
    manifest = paths["manifest"]
    complete = manifest.is_file() and paths["train"].is_file() and paths["test"].is_file()
    if complete and json.loads(manifest.read_text()).get("config") == config:
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
    for key, content in (("train", train), ("test", test)):
        tmp = paths[key].with_suffix(".json.tmp")
        tmp.write_text(json.dumps(content))
        tmp.replace(paths[key])
    digest = hashlib.sha1(paths["test"].read_bytes()).hexdigest()[:12]
    manifest.write_text(
        json.dumps({"label": SCENES_LABEL, "config": config, "source": source, "test_sha1": digest}, indent=2)
    )
    return paths
