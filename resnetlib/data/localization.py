"""ImageNet localization data (appendix C, Tables 13-14) in the ILSVRC CLS-LOC layout, and a Fashion-MNIST
stand-in written in exactly that layout, so the CPU profile goes through the code that reads ImageNet.

The layout, as extracted from image-net.org's ILSVRC2017_CLS-LOC.tar.gz or Kaggle's
"imagenet-object-localization-challenge"::

    ROOT/LOC_synset_mapping.txt                           "n01440764 tench, Tinca tinca"; line k is class k
    ROOT/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG
    ROOT/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_<8 digits>.JPEG          (flat: no class folders)
    ROOT/ILSVRC/Annotations/CLS-LOC/train/<wnid>/<wnid>_<n>.xml          (a subset of the training images)
    ROOT/ILSVRC/Annotations/CLS-LOC/val/ILSVRC2012_val_<8 digits>.xml    (every validation image)

What we checked, and where:
- The ILSVRC2015 devkit readme (a copy: github.com/fanyix/STMN, external/VID_devkit/readme.txt): CLS-LOC is
  unchanged since 2012; training images are ``x_y.JPEG`` (x the wnid, y an integer, not fixed width), val
  images ``ILSVRC2012_val_00000001.JPEG`` ... ``_00050000``; boxes are "in PASCAL VOC format", one XML per
  annotated image named like it (X.JPEG -> X.xml); at least 100 training images per synset have boxes,
  every val image has boxes "for the target category"; an object's ``<name>`` is its wnid.
- The Kaggle layout (ILSVRC/Data/CLS-LOC, ILSVRC/Annotations/CLS-LOC, LOC_synset_mapping.txt beside ILSVRC/)
  as read by ChainerCV's ImagenetLocBboxDataset and several user repositories; val XMLs have ``<folder>val``,
  ``<filename>`` without extension, ``<size>`` and ``<object><name/><bndbox/></object>``.
- Box coordinates. The devkit's evaluation (compute_overlap.m, copy in github.com/zhoubolei/CAM) takes a
  box's width as ``xmax - xmin + 1``: values are inclusive pixel indices, as in PASCAL VOC. No source states
  the origin outright. ChainerCV parses these files with its VOC parser, which subtracts 1 ("make pixel
  indexes 0-based"), i.e. 1-based; TensorFlow's inception ``process_bounding_boxes.py`` divides the raw values
  by the width with no shift. We take them as 1-based, like PASCAL VOC (and this project's VOC loader), and
  convert to torchvision's continuous xyxy as ``(xmin - 1, ymin - 1, xmax, ymax)``; the two readings differ
  by one pixel at the top-left corner.
- Data noise, from the TensorFlow script's comments: some values are floats; ``<size>`` is the size shown to
  the annotator and may differ from the image's (we scale boxes by image size / annotated size); some boxes
  extend outside the image or have min > max (we sort and clamp; boxes left without area are dropped);
  ``<filename>`` is sometimes ``%s`` (we pair files by path, never by that field); some training boxes are
  named by a human label (e.g. 'Scottish_deerhound') instead of a wnid (such a training box gets its
  folder's class). That script reports a box kept for every one of the 544,546 training XMLs.

Not checked: whether image-net.org's tarball itself ships LOC_synset_mapping.txt (Kaggle's does); without
it, write one line '<wnid> <name>' per class, in sorted wnid order to match Kaggle's file.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .common import DataCorruptError, DataNotFoundError, balanced_subset, resolve_root
from .fashion_mnist import read_fashion_mnist

__all__ = [
    "SYNSET_FILE",
    "Annotation",
    "LocalizationDataset",
    "parse_annotation",
    "read_synsets",
    "write_fashion_mnist_localization",
]

SYNSET_FILE = "LOC_synset_mapping.txt"
STAMP = "fashion_mnist_localization.json"  # the stand-in's settings; its presence marks a folder as ours
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
LAYOUT = (
    "Expected the ILSVRC CLS-LOC layout (image-net.org's ILSVRC2017_CLS-LOC.tar.gz or Kaggle's "
    f"imagenet-object-localization-challenge, extracted): ROOT/{SYNSET_FILE}, "
    "ROOT/ILSVRC/Data/CLS-LOC/{train/<wnid>/<wnid>_<n>.JPEG, val/ILSVRC2012_val_<8 digits>.JPEG} and "
    "ROOT/ILSVRC/Annotations/CLS-LOC/{train/<wnid>/<wnid>_<n>.xml, val/ILSVRC2012_val_<8 digits>.xml}. "
    "CPU stand-in: resnetlib.data.localization.write_fashion_mnist_localization(ROOT)."
)
XML_FORMAT = (
    "expected PASCAL VOC style <annotation><size><width/><height/></size> and per box "
    "<object><name>wnid</name><bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object>"
)


def _data_dir(root: Path, split: str) -> Path:
    return root / "ILSVRC" / "Data" / "CLS-LOC" / split


def _annotation_dir(root: Path, split: str) -> Path:
    return root / "ILSVRC" / "Annotations" / "CLS-LOC" / split


def read_synsets(root: str | os.PathLike | None) -> list[tuple[str, str]]:
    """``[(wnid, name)]`` from ``ROOT/LOC_synset_mapping.txt``; line order is the class index. A line is the
    wnid, whitespace, then the names (``n01440764 tench, Tinca tinca``); a bare wnid is its own name."""
    path = resolve_root(root) / SYNSET_FILE
    if not path.is_file():
        raise DataNotFoundError(f"synset mapping not found: {path} ('<wnid> <name>' per class). {LAYOUT}")
    synsets, seen = [], {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        wnid, *name = line.split(maxsplit=1)
        if wnid in seen:
            raise DataCorruptError(f"{path}:{number}: wnid {wnid} already listed on line {seen[wnid]}")
        seen[wnid] = number
        synsets.append((wnid, name[0].strip() if name else wnid))
    if not synsets:
        raise DataCorruptError(f"{path} lists no classes; expected one '<wnid> <name>' line per class")
    return synsets


@dataclass(frozen=True)
class Annotation:
    """One ILSVRC annotation file, values as written: ``objects`` are (wnid, xmin, ymin, xmax, ymax) in
    1-based inclusive pixel indices of the annotated ``width`` x ``height`` image."""

    filename: str
    width: int
    height: int
    objects: tuple[tuple[str, float, float, float, float], ...]

    def xyxy(self, image_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, list[str]]:
        """(float32 boxes [N,4] in torchvision's continuous (x1, y1, x2, y2), their wnids) for an image of
        ``image_size`` = (width, height), default the annotated size: min/max sorted, ``(xmin - 1, ymin - 1,
        xmax, ymax)``, scaled by image size / annotated size, clamped to the image; boxes left without
        area are dropped."""
        w, h = image_size or (self.width, self.height)
        sx, sy = w / self.width, h / self.height
        boxes, wnids = [], []
        for wnid, x1, y1, x2, y2 in self.objects:
            box = [(min(x1, x2) - 1) * sx, (min(y1, y2) - 1) * sy, max(x1, x2) * sx, max(y1, y2) * sy]
            box = [min(max(v, 0.0), limit) for v, limit in zip(box, (w, h, w, h))]
            if box[2] > box[0] and box[3] > box[1]:
                boxes.append(box)
                wnids.append(wnid)
        return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), wnids


def _text(element: ET.Element, tag: str) -> str:
    text = element.findtext(tag)
    if text is None or not text.strip():
        raise ValueError(f"missing <{tag}>")
    return text.strip()


def parse_annotation(path: str | os.PathLike) -> Annotation:
    """An ILSVRC (PASCAL VOC style) XML file; DataCorruptError naming the file and the problem if not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}. {LAYOUT}")
    try:
        root = ET.parse(path).getroot()
        if root.tag != "annotation":
            raise ValueError(f"root element is <{root.tag}>, not <annotation>")
        width, height = (int(float(_text(root, f"size/{k}"))) for k in ("width", "height"))
        if width < 1 or height < 1:
            raise ValueError(f"<size> {width}x{height} is not positive")
        corners = ("xmin", "ymin", "xmax", "ymax")
        objects = tuple(
            (_text(obj, "name"), *(float(_text(obj, f"bndbox/{k}")) for k in corners))
            for obj in root.findall("object")
        )
    except (ET.ParseError, ValueError) as exc:
        raise DataCorruptError(f"{path}: {exc}; {XML_FORMAT}") from exc
    return Annotation((root.findtext("filename") or "").strip(), width, height, objects)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _xml_stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.iterdir() if p.suffix == ".xml"} if folder.is_dir() else set()


def _to_tensor(img: Image.Image, mode: str | None) -> torch.Tensor:
    """float32 [C,H,W] in [0,1]; mode None keeps a grey ('L') file grey (1 channel), all else RGB."""
    array = np.array(img.convert(mode or ("L" if img.mode == "L" else "RGB")), dtype=np.uint8)
    tensor = torch.from_numpy(array)
    return (tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)).float().div_(255.0)


class LocalizationDataset(Dataset):
    """ILSVRC CLS-LOC images with their boxes: item ``(image, target)``, image float32 [C,H,W] in [0,1],
    target ``boxes`` float32 [N,4] (xyxy, see the module docstring), ``labels`` int64 [N] (class indices in
    synset-file order), ``image_id`` (the item's index) and ``image_label`` (the image's class).

    ``split="train"``: the class folders; with ``boxes_required`` only the images that have an XML (the
    localization training set), else all (those without one get no boxes). ``split="val"``: every image
    must have its XML, which names its class (all of a val image's objects share it). ``mode`` None keeps a
    grey file 1-channel and reads any other as RGB; "RGB" or "L" forces one (ImageNet holds some grey
    JPEGs: pass "RGB" to batch it). ``transform(image, target) -> (image, target)`` runs on each item.
    With ``boxes_required``, an item whose boxes all fall outside its image raises DataCorruptError.
    """

    def __init__(self, root: str | os.PathLike | None, split: str = "train",
                 transform: Callable[[torch.Tensor, dict], tuple[torch.Tensor, dict]] | None = None,
                 boxes_required: bool = True, mode: str | None = None) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val' (ILSVRC test has no boxes); got {split!r}")
        if mode not in (None, "RGB", "L"):
            raise ValueError(f"mode must be None (the file's), 'RGB' or 'L'; got {mode!r}")
        self.root = resolve_root(root)
        if not self.root.is_dir():
            raise DataNotFoundError(f"ILSVRC CLS-LOC root not found: {self.root}. {LAYOUT}")
        synsets = read_synsets(self.root)
        self.wnids, self.classes = [w for w, _ in synsets], [n for _, n in synsets]
        self.class_to_idx = {w: k for k, w in enumerate(self.wnids)}
        self.split, self.transform, self.boxes_required, self.mode = split, transform, boxes_required, mode
        #: (image, its XML or None, its class; -1 in val, where the XML names it)
        self.samples = self._scan_train() if split == "train" else self._scan_val()

    @property
    def num_classes(self) -> int:
        return len(self.wnids)

    def __len__(self) -> int:
        return len(self.samples)

    def _folders(self) -> tuple[Path, Path]:
        data, ann = _data_dir(self.root, self.split), _annotation_dir(self.root, self.split)
        needed = [data, ann] if self.boxes_required or self.split == "val" else [data]
        missing = [str(p) for p in needed if not p.is_dir()]
        if missing:
            raise DataNotFoundError(f"missing {', '.join(missing)}. {LAYOUT}")
        return data, ann

    def _scan_train(self) -> list[tuple[Path, Path | None, int]]:
        data, ann = self._folders()
        folders = sorted(p for p in data.iterdir() if p.is_dir())
        unknown = [p.name for p in folders if p.name not in self.class_to_idx]
        if unknown:
            raise ValueError(f"{data}: class folders {unknown[:5]} ({len(unknown)} in all) are not wnids "
                             f"of {self.root / SYNSET_FILE}; name each training folder by a listed wnid")
        samples = []
        for folder in folders:
            xmls = _xml_stems(ann / folder.name)
            for image in _images(folder):
                xml = ann / folder.name / f"{image.stem}.xml" if image.stem in xmls else None
                if xml is not None or not self.boxes_required:
                    samples.append((image, xml, self.class_to_idx[folder.name]))
        if not samples:
            which = "with an annotation XML " if self.boxes_required else ""
            raise DataNotFoundError(f"no training images {which}under {data} (XMLs: {ann}). {LAYOUT}")
        return samples

    def _scan_val(self) -> list[tuple[Path, Path | None, int]]:
        data, ann = self._folders()
        images = _images(data)
        if not images:
            raise DataNotFoundError(f"no images directly in {data}: ILSVRC val images lie flat there, not in "
                                    f"class folders. {LAYOUT}")
        xmls = _xml_stems(ann)
        missing = [ann / f"{p.stem}.xml" for p in images if p.stem not in xmls]
        if missing:
            raise FileNotFoundError(f"{len(missing)} of {len(images)} validation images have no annotation, "
                                    f"e.g. {missing[0]}; every val image needs its XML (it names the class)")
        return [(p, ann / f"{p.stem}.xml", -1) for p in images]

    def _label(self, wnid: str, fallback: int, xml: Path) -> int:
        """A box's class: its wnid's index; in train an unknown name (data noise) takes the folder's class."""
        if wnid in self.class_to_idx:
            return self.class_to_idx[wnid]
        if fallback >= 0:
            return fallback
        raise ValueError(f"{xml}: object class {wnid!r} is not a wnid of {self.root / SYNSET_FILE}")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        image_path, xml, image_label = self.samples[index]
        with Image.open(image_path) as img:
            image = _to_tensor(img, self.mode)
        boxes, labels = torch.zeros((0, 4), dtype=torch.float32), torch.zeros(0, dtype=torch.int64)
        if xml is not None:
            ann = parse_annotation(xml)
            if image_label < 0:  # val: the class comes from the objects
                if not ann.objects:
                    raise DataCorruptError(f"{xml}: no <object>, so no class for the image; {XML_FORMAT}")
                image_label = self._label(ann.objects[0][0], -1, xml)
            boxes, wnids = ann.xyxy((image.shape[2], image.shape[1]))
            labels = torch.tensor([self._label(w, image_label, xml) for w in wnids], dtype=torch.int64)
            if self.boxes_required and len(boxes) == 0:
                size = f"{image.shape[2]}x{image.shape[1]}"
                raise DataCorruptError(f"{xml}: no box with area inside the {size} image {image_path.name} "
                                       f"(objects {list(ann.objects)}); use boxes_required=False to keep it")
        target = {"boxes": boxes, "labels": labels, "image_id": index, "image_label": image_label}
        return self.transform(image, target) if self.transform is not None else (image, target)


# ------------------------------------------------------------------------------------ the CPU stand-in


def _render(item: np.ndarray, rng: np.random.Generator, canvas: int,
            scale_range: tuple[float, float]) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A black ``canvas`` square holding the 28 px ``item`` resized by a factor from ``scale_range``
    (bilinear) and cropped to its nonzero pixels, at a random place; (pixels, its exact tight box
    (x0, y0, x1, y1) in 0-based half-open pixel ranges), or None for a blank item."""
    side = max(1, round(28 * rng.uniform(*scale_range)))
    scaled = np.asarray(Image.fromarray(item).resize((side, side), Image.Resampling.BILINEAR))
    ys, xs = np.nonzero(scaled)
    if len(ys) == 0:
        return None
    crop = scaled[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    y0, x0 = int(rng.integers(0, canvas - h + 1)), int(rng.integers(0, canvas - w + 1))
    pixels = np.zeros((canvas, canvas), dtype=np.uint8)
    pixels[y0 : y0 + h, x0 : x0 + w] = crop
    return pixels, (x0, y0, x0 + w, y0 + h)


def _annotation_xml(folder: str, stem: str, canvas: int, wnid: str, box: tuple[int, int, int, int]) -> str:
    """The ILSVRC XML of one grey canvas with one box; the half-open 0-based box becomes ILSVRC's 1-based
    inclusive indices (x0 + 1, y0 + 1, x1, y1), which ``Annotation.xyxy`` maps back to (x0, y0, x1, y1)."""
    root = ET.Element("annotation")
    for tag, text in (("folder", folder), ("filename", stem)):
        ET.SubElement(root, tag).text = text
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "Fashion-MNIST (resnetlib stand-in)"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", canvas), ("height", canvas), ("depth", 1)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    obj = ET.SubElement(root, "object")
    for tag, text in (("name", wnid), ("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
        ET.SubElement(obj, tag).text = text
    bndbox = ET.SubElement(obj, "bndbox")
    x0, y0, x1, y1 = box
    for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
        ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def _check_standin(num_train_per_class: int, num_val: int, canvas: int, scale_range) -> None:
    sizes = {"num_train_per_class": num_train_per_class, "num_val": num_val, "canvas": canvas}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    lo, hi = scale_range
    if not 0 < lo <= hi or 28 * hi > canvas:
        raise ValueError(f"scale_range {tuple(scale_range)} must be (lo, hi) with 0 < lo <= hi and the "
                         f"largest item, 28*hi = {28 * hi:g} px, within canvas {canvas}")


def _standin_complete(out_root: Path, settings: dict) -> bool:
    """True for a complete stand-in with ``settings``; FileExistsError rather than write over anything."""
    try:
        stamp = json.loads((out_root / STAMP).read_text())
    except (OSError, ValueError):
        stamp = None
    if stamp is None:
        taken = [str(p) for p in (out_root / "ILSVRC", out_root / SYNSET_FILE) if p.exists()]
        if taken:
            raise FileExistsError(f"{out_root} already holds {', '.join(taken)} but no {STAMP}: it is no "
                                  "stand-in of write_fashion_mnist_localization (the real ImageNet?); "
                                  "refusing to write into it. Choose an empty or new folder.")
        return False
    if stamp.get("settings") != settings:
        raise FileExistsError(f"{out_root} holds a stand-in written with other settings "
                              f"({stamp.get('settings')}); nothing is ever deleted here: write {settings} "
                              "to a new folder.")
    return stamp.get("complete") is True


def write_fashion_mnist_localization(
    out_root: str | os.PathLike,
    fashion_root: str | os.PathLike | None = "",
    num_train_per_class: int = 100,
    num_val: int = 500,
    canvas: int = 64,
    scale_range: tuple[float, float] = (1.0, 2.0),
    seed: int = 0,
) -> Path:
    """Write the ILSVRC CLS-LOC stand-in under ``out_root``; returns it (a root for ``LocalizationDataset``).

    Each image is a black grey ``canvas`` square holding ONE real Fashion-MNIST item (train images from its
    training split, ``num_train_per_class`` per class; val from its test split, ``num_val`` class-balanced),
    resized by a factor from ``scale_range`` and placed at random; its box is the exact tight box of the
    item's nonzero pixels as rendered (JPEG, quality 95, adds faint ringing around it). Every image has its
    XML. Classes get made-up wnids ``f00000000`` .. ``f00000009`` in Fashion-MNIST label order. A stamp
    (``fashion_mnist_localization.json``) records the settings: a complete set with the same settings is
    kept as is, an interrupted one rewritten; files are never deleted, so other settings need a new folder.
    Fashion-MNIST is read from ``fashion_root`` ("" or None = the default search, see fashion_mnist.py).
    """
    _check_standin(num_train_per_class, num_val, canvas, scale_range)
    out_root = Path(out_root).expanduser()
    settings = {"format": 1, "num_train_per_class": num_train_per_class, "num_val": num_val, "canvas": canvas,
                "scale_range": [float(s) for s in scale_range], "seed": seed}
    if _standin_complete(out_root, settings):
        return out_root
    train, test, classes, source = read_fashion_mnist(fashion_root or None)
    fewest = int(torch.bincount(train.labels, minlength=len(classes)).min())
    if num_train_per_class > fewest or num_val > len(test):
        raise ValueError(f"num_train_per_class={num_train_per_class} / num_val={num_val} exceed what "
                         f"{source} holds ({fewest} training images in its smallest class, "
                         f"{len(test)} test images)")
    out_root.mkdir(parents=True, exist_ok=True)
    stamp = {"settings": settings, "source": source, "complete": False}
    (out_root / STAMP).write_text(json.dumps(stamp, indent=2))
    wnids = [f"f{k:08d}" for k in range(len(classes))]
    rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    counts = [0] * len(classes)
    for i in balanced_subset(train.labels, num_train_per_class * len(classes), g).tolist():
        label = int(train.labels[i])
        counts[label] += 1
        wnid = wnids[label]
        _write_item(out_root, f"train/{wnid}", f"{wnid}_{counts[label]}", train.images[i, 0], wnid,
                    rng, canvas, scale_range)
    for n, i in enumerate(balanced_subset(test.labels, num_val, g).tolist(), 1):
        _write_item(out_root, "val", f"ILSVRC2012_val_{n:08d}", test.images[i, 0], wnids[int(test.labels[i])],
                    rng, canvas, scale_range)
    (out_root / SYNSET_FILE).write_text("".join(f"{w} {c}\n" for w, c in zip(wnids, classes)))
    (out_root / STAMP).write_text(json.dumps({**stamp, "complete": True}, indent=2))
    return out_root


def _write_item(out_root: Path, sub: str, stem: str, item: torch.Tensor, wnid: str, rng: np.random.Generator,
                canvas: int, scale_range) -> None:
    """One canvas: ``ILSVRC/{Data,Annotations}/CLS-LOC/<sub>/<stem>.{JPEG,xml}``."""
    rendered = _render(item.numpy(), rng, canvas, scale_range)
    if rendered is None:
        raise DataCorruptError(f"the Fashion-MNIST item for {sub}/{stem} is blank (all 0): no box to write")
    pixels, box = rendered
    image_dir, ann_dir = _data_dir(out_root, sub), _annotation_dir(out_root, sub)
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(image_dir / f"{stem}.JPEG", format="JPEG", quality=95)
    (ann_dir / f"{stem}.xml").write_text(_annotation_xml(sub.split("/")[-1], stem, canvas, wnid, box))
