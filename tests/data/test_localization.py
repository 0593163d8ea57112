"""resnetlib.data.localization: the ILSVRC CLS-LOC layout read from a tiny tree written by hand in the real
format (JPEGs, PASCAL VOC style XMLs, LOC_synset_mapping.txt), and the Fashion-MNIST stand-in in it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlib.data.common import DataCorruptError, DataNotFoundError
from resnetlib.data.fashion_mnist import find_fashion_mnist
from resnetlib.data.localization import (
    SYNSET_FILE,
    Annotation,
    LocalizationDataset,
    _render,
    parse_annotation,
    read_synsets,
    write_fashion_mnist_localization,
)

# Line order is the class index, not the sorted wnids: goldfish is class 0 here, tench class 1.
MAPPING = "n01443537 goldfish, Carassius auratus\n\nn01440764 tench, Tinca tinca\n"
TENCH, GOLDFISH = "n01440764", "n01443537"


def ilsvrc_xml(folder: str, filename: str, width: int, height: int, objects, depth: int = 3) -> str:
    """An annotation as ILSVRC ships it (tabs, <folder> = wnid or 'val', <filename> without extension)."""
    objs = "".join(
        f"\n\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>"
        f"\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>"
        f"\n\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>"
        for name, x1, y1, x2, y2 in objects
    )
    return (
        f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>\n\t<source>\n"
        f"\t\t<database>ILSVRC_2012</database>\n\t</source>\n\t<size>\n\t\t<width>{width}</width>\n"
        f"\t\t<height>{height}</height>\n\t\t<depth>{depth}</depth>\n\t</size>\n\t<segmented>0</segmented>"
        f"{objs}\n</annotation>\n"
    )


def jpeg(path: Path, width: int, height: int, grey: bool = False, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    shape = (height, width) if grey else (height, width, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path, format="JPEG", quality=95)


def xml(path: Path, *args, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ilsvrc_xml(*args, **kwargs))


@pytest.fixture
def ilsvrc(tmp_path) -> Path:
    """ROOT with 2 wnids: 5 training images (3 with XMLs, one grey) and 2 val images (one with 2 boxes)."""
    root = tmp_path / "imagenet"
    data, ann = root / "ILSVRC" / "Data" / "CLS-LOC", root / "ILSVRC" / "Annotations" / "CLS-LOC"
    (root / SYNSET_FILE).parent.mkdir(parents=True)
    (root / SYNSET_FILE).write_text(MAPPING)
    jpeg(data / "train" / TENCH / f"{TENCH}_10026.JPEG", 40, 30)
    xml(ann / "train" / TENCH / f"{TENCH}_10026.xml", TENCH, f"{TENCH}_10026", 40, 30,
        [(TENCH, 5, 6, 20, 25)])
    jpeg(data / "train" / TENCH / f"{TENCH}_10027.JPEG", 32, 32, grey=True)
    xml(ann / "train" / TENCH / f"{TENCH}_10027.xml", TENCH, "%s", 32, 32, [(TENCH, 1, 1, 32, 32)], depth=1)
    jpeg(data / "train" / TENCH / f"{TENCH}_9.JPEG", 36, 36)  # no XML, as for most training images
    jpeg(data / "train" / GOLDFISH / f"{GOLDFISH}_1.JPEG", 50, 40)
    xml(ann / "train" / GOLDFISH / f"{GOLDFISH}_1.xml", GOLDFISH, f"{GOLDFISH}_1", 50, 40,
        [("goldfish_human_label", 2, 3, 10, 12)])  # data noise: a human label instead of the wnid
    jpeg(data / "train" / GOLDFISH / f"{GOLDFISH}_2.JPEG", 30, 30)
    jpeg(data / "val" / "ILSVRC2012_val_00000001.JPEG", 48, 40)
    xml(ann / "val" / "ILSVRC2012_val_00000001.xml", "val", "ILSVRC2012_val_00000001", 48, 40,
        [(GOLDFISH, 3, 4, 20, 30), (GOLDFISH, 25, 5, 48, 40)])
    jpeg(data / "val" / "ILSVRC2012_val_00000002.JPEG", 30, 20)
    xml(ann / "val" / "ILSVRC2012_val_00000002.xml", "val", "ILSVRC2012_val_00000002", 30, 20,
        [(TENCH, 1, 1, 30, 20)])
    return root


# ------------------------------------------------------------------------------------------ parsing


def test_parse_annotation_reads_values_as_written(tmp_path):
    path = tmp_path / "ILSVRC2012_val_00000001.xml"
    path.write_text(ilsvrc_xml("val", "ILSVRC2012_val_00000001", 500, 375,
                               [("n01751748", 111, 108, 441, 193), ("n01751748", 1, 2.5, 500, 375)]))
    ann = parse_annotation(path)
    assert ann == Annotation("ILSVRC2012_val_00000001", 500, 375,
                             (("n01751748", 111, 108, 441, 193), ("n01751748", 1, 2.5, 500, 375)))


def test_xyxy_converts_one_based_inclusive_indices_scales_sorts_clamps_and_drops():
    ann = Annotation("x", 40, 30, (("a", 1, 1, 10, 20), ("b", 30, 5, 21, 1), ("c", 35, 25, 45, 40),
                                   ("d", 45, 1, 50, 30)))
    boxes, wnids = ann.xyxy()
    # pixels 1..10 (1-based, inclusive) are 0..9 0-based: the continuous box [0, 10)
    assert boxes.tolist() == [[0, 0, 10, 20], [20, 0, 30, 5], [34, 24, 40, 30]]
    assert wnids == ["a", "b", "c"]  # d lies wholly right of the 40 px image: dropped
    boxes, _ = ann.xyxy((20, 15))  # annotated at 40x30, image 20x15: halved
    assert boxes[0].tolist() == [0, 0, 5, 10] and boxes.dtype == torch.float32


def test_read_synsets_keeps_file_order_and_names(ilsvrc):
    assert read_synsets(ilsvrc) == [(GOLDFISH, "goldfish, Carassius auratus"), (TENCH, "tench, Tinca tinca")]
    (ilsvrc / SYNSET_FILE).write_text(MAPPING + f"{TENCH} again\n")
    with pytest.raises(DataCorruptError, match=rf"{SYNSET_FILE}:4: wnid {TENCH} already listed on line 3"):
        read_synsets(ilsvrc)
    (ilsvrc / SYNSET_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=rf"synset mapping not found: .*{SYNSET_FILE}.*ILSVRC/Data"):
        read_synsets(ilsvrc)


# ------------------------------------------------------------------------------------------ data set


def test_train_items_carry_boxes_labels_and_the_files_channels(ilsvrc):
    ds = LocalizationDataset(ilsvrc, "train")
    assert ds.wnids == [GOLDFISH, TENCH] and ds.num_classes == 2
    assert ds.classes == ["goldfish, Carassius auratus", "tench, Tinca tinca"]
    # class folders in sorted order, and only the images that have an XML
    names = [p.name for p, _, _ in ds.samples]
    assert names == [f"{TENCH}_10026.JPEG", f"{TENCH}_10027.JPEG", f"{GOLDFISH}_1.JPEG"]
    image, target = ds[0]
    assert image.shape == (3, 30, 40) and image.dtype == torch.float32
    assert 0 <= image.min() <= image.max() <= 1
    assert target["boxes"].tolist() == [[4, 5, 20, 25]]  # written (5, 6, 20, 25), 1-based inclusive
    assert target["labels"].tolist() == [1] and target["image_id"] == 0 and target["image_label"] == 1
    grey, target = ds[1]  # <filename>%s</filename>: files are paired by path, not by that field
    assert grey.shape == (1, 32, 32) and target["boxes"].tolist() == [[0, 0, 32, 32]]
    assert ds[2][1]["labels"].tolist() == [0]  # a box named by a human label takes its folder's class
    assert LocalizationDataset(ilsvrc, "train", mode="RGB")[1][0].shape == (3, 32, 32)


def test_boxes_required_false_keeps_unannotated_training_images(ilsvrc):
    ds = LocalizationDataset(ilsvrc, "train", boxes_required=False)
    assert len(ds) == 5
    names = [p.name for p, _, _ in ds.samples]
    _, target = ds[names.index(f"{TENCH}_9.JPEG")]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,) and target["image_label"] == 1
    shutil.rmtree(ilsvrc / "ILSVRC" / "Annotations" / "CLS-LOC" / "train")  # not needed without boxes
    assert len(LocalizationDataset(ilsvrc, "train", boxes_required=False)) == 5


def test_val_labels_come_from_the_xml_objects(ilsvrc):
    ds = LocalizationDataset(ilsvrc, "val", transform=lambda image, target: (image, {**target, "t": 1}))
    assert len(ds) == 2
    image, target = ds[0]
    assert image.shape == (3, 40, 48) and target["t"] == 1
    assert target["labels"].tolist() == [0, 0] and target["image_label"] == 0
    assert target["boxes"].tolist() == [[2, 3, 20, 30], [24, 4, 48, 40]]
    assert ds[1][1]["labels"].tolist() == [1]


# ------------------------------------------------------------------------------------------ errors


def test_missing_root_folders_and_bad_arguments_are_named(ilsvrc, tmp_path):
    with pytest.raises(DataNotFoundError, match=r"CLS-LOC root not found: .*nowhere.*Expected the ILSVRC"):
        LocalizationDataset(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        LocalizationDataset(ilsvrc, "test")
    with pytest.raises(ValueError, match="mode must be"):
        LocalizationDataset(ilsvrc, "val", mode="CMYK")
    shutil.rmtree(ilsvrc / "ILSVRC" / "Annotations" / "CLS-LOC" / "train")
    with pytest.raises(DataNotFoundError, match=r"missing .*Annotations/CLS-LOC/train\. Expected"):
        LocalizationDataset(ilsvrc, "train")
    shutil.rmtree(ilsvrc / "ILSVRC" / "Data" / "CLS-LOC" / "val")
    with pytest.raises(DataNotFoundError, match=r"missing .*Data/CLS-LOC/val\. Expected"):
        LocalizationDataset(ilsvrc, "val")


def test_images_without_xml_where_required_are_named(ilsvrc):
    val = ilsvrc / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    jpeg(val / "ILSVRC2012_val_00000003.JPEG", 20, 20)
    with pytest.raises(FileNotFoundError, match=r"1 of 3 validation images .*ILSVRC2012_val_00000003\.xml"):
        LocalizationDataset(ilsvrc, "val")
    for p in val.glob("*.JPEG"):  # sorted into class folders (valprep.sh style): nothing flat is left
        (val / TENCH).mkdir(exist_ok=True)
        p.rename(val / TENCH / p.name)
    with pytest.raises(DataNotFoundError, match="no images directly in .*lie flat there"):
        LocalizationDataset(ilsvrc, "val")
    for p in (ilsvrc / "ILSVRC" / "Annotations" / "CLS-LOC" / "train").rglob("*.xml"):
        p.unlink()
    with pytest.raises(DataNotFoundError, match="no training images with an annotation XML under"):
        LocalizationDataset(ilsvrc, "train")


def test_unknown_wnids_are_named(ilsvrc):
    ann = ilsvrc / "ILSVRC" / "Annotations" / "CLS-LOC"
    xml(ann / "val" / "ILSVRC2012_val_00000002.xml", "val", "v", 30, 20, [("n99999999", 1, 1, 5, 5)])
    problem = rf"val_00000002\.xml: object class 'n99999999' is not a wnid of .*{SYNSET_FILE}"
    with pytest.raises(ValueError, match=problem):
        LocalizationDataset(ilsvrc, "val")[1]
    jpeg(ilsvrc / "ILSVRC" / "Data" / "CLS-LOC" / "train" / "n99999999" / "n99999999_1.JPEG", 8, 8)
    with pytest.raises(ValueError, match=r"class folders \['n99999999'\] \(1 in all\) are not wnids"):
        LocalizationDataset(ilsvrc, "train")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<annotation><size><width>10", "no element found"),
        ("<voc/>", "root element is <voc>, not <annotation>"),
        ("<annotation><size><width>10</width></size></annotation>", "missing <size/height>"),
        ("<annotation><size><width>0</width><height>5</height></size></annotation>",
         "size> 0x5 is not positive"),
        (("<annotation><size><width>9</width><height>9</height></size><object><name>n1</name></object>"
          "</annotation>"), "missing <bndbox/xmin>"),
        (ilsvrc_xml("val", "v", 9, 9, [(GOLDFISH, "left", 1, 2, 2)]),
         "could not convert string to float: 'left'"),
    ],
)
def test_malformed_xml_names_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(DataCorruptError, match=rf"bad\.xml: .*{problem}.*expected PASCAL VOC style"):
        parse_annotation(path)


def test_items_without_usable_boxes_or_class_are_named(ilsvrc):
    ann = ilsvrc / "ILSVRC" / "Annotations" / "CLS-LOC"
    xml(ann / "train" / TENCH / f"{TENCH}_10026.xml", TENCH, "x", 40, 30, [(TENCH, 50, 1, 60, 9)])
    with pytest.raises(DataCorruptError, match=r"no box with area inside the 40x30 image"):
        LocalizationDataset(ilsvrc, "train")[0]
    assert LocalizationDataset(ilsvrc, "train", boxes_required=False)[0][1]["boxes"].shape == (0, 4)
    xml(ann / "val" / "ILSVRC2012_val_00000002.xml", "val", "v", 30, 20, [])
    with pytest.raises(DataCorruptError, match=r"no <object>, so no class"):
        LocalizationDataset(ilsvrc, "val")[1]


# ------------------------------------------------------------------------------------------ stand-in


def test_render_box_is_the_exact_tight_box_of_the_item():
    item = np.zeros((28, 28), dtype=np.uint8)
    item[5:21, 3:11] = 200
    item[12, 25] = 90  # a lone pixel far right: the box must reach it
    rng = np.random.default_rng(0)
    for _ in range(20):
        pixels, (x0, y0, x1, y1) = _render(item, rng, 64, (1.0, 2.0))
        ys, xs = np.nonzero(pixels)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
    assert _render(np.zeros((28, 28), np.uint8), rng, 64, (1.0, 1.0)) is None


def check_standin(root: Path, canvas: int, threshold: int) -> None:
    """Every box lies inside its canvas and covers the item: all pixels above ``threshold`` (JPEG ringing
    aside) and 98% of the ink lie inside it (measured: at most 7 grey levels and 0.6% of the ink outside)."""
    for split in ("train", "val"):
        ds = LocalizationDataset(root, split)
        for i in range(len(ds)):
            image, target = ds[i]
            assert image.shape == (1, canvas, canvas) and len(target["boxes"]) == 1
            x0, y0, x1, y1 = (int(v) for v in target["boxes"][0])
            assert (x0, y0, x1, y1) == tuple(target["boxes"][0].tolist())  # whole pixels
            assert 0 <= x0 < x1 <= canvas and 0 <= y0 < y1 <= canvas
            pixels = (image[0] * 255).round()
            inside = torch.zeros_like(pixels, dtype=torch.bool)
            inside[y0:y1, x0:x1] = True
            assert pixels[~inside].max() <= threshold
            assert pixels[inside].sum() >= 0.98 * pixels.sum()
            assert target["labels"].tolist() == [target["image_label"]]


def test_standin_round_trip_on_tiny_fashion(tmp_path, fake_fashion):
    fashion, _ = fake_fashion
    root = write_fashion_mnist_localization(tmp_path / "loc", fashion_root=fashion, num_train_per_class=2,
                                            num_val=6, canvas=64, seed=1)
    lines = (root / SYNSET_FILE).read_text().splitlines()
    assert lines[0] == "f00000000 T-shirt/top" and lines[9] == "f00000009 Ankle boot" and len(lines) == 10
    train = LocalizationDataset(root, "train")
    assert len(train) == 20 and sorted(label for *_, label in train.samples) == sorted(list(range(10)) * 2)
    assert (root / "ILSVRC" / "Data" / "CLS-LOC" / "train" / "f00000003" / "f00000003_2.JPEG").is_file()
    val_xml = root / "ILSVRC" / "Annotations" / "CLS-LOC" / "val" / "ILSVRC2012_val_00000006.xml"
    ann = parse_annotation(val_xml)
    assert ann.width == ann.height == 64 and len(ann.objects) == 1 and ann.objects[0][1] >= 1
    assert "<folder>val</folder>" in val_xml.read_text()
    check_standin(root, 64, threshold=32)
    stamp = json.loads((root / "fashion_mnist_localization.json").read_text())
    assert stamp["complete"] is True and stamp["source"] == str(fashion)


def test_standin_is_idempotent_and_never_deletes(tmp_path, fake_fashion):
    fashion, _ = fake_fashion
    out = tmp_path / "loc"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    kwargs = {"fashion_root": fashion, "num_train_per_class": 1, "num_val": 3}
    write_fashion_mnist_localization(out, **kwargs)
    stamp = (out / "fashion_mnist_localization.json").stat().st_mtime_ns
    assert write_fashion_mnist_localization(out, **kwargs) == out
    assert (out / "fashion_mnist_localization.json").stat().st_mtime_ns == stamp  # kept, not rewritten
    with pytest.raises(FileExistsError, match="other settings .*nothing is ever deleted"):
        write_fashion_mnist_localization(out, **{**kwargs, "num_val": 4})
    assert (out / "notes.txt").read_text() == "mine"
    foreign = tmp_path / "imagenet"
    (foreign / "ILSVRC").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="no stand-in .*refusing to write into it"):
        write_fashion_mnist_localization(foreign, **kwargs)


def test_standin_interrupted_write_is_redone(tmp_path, fake_fashion, monkeypatch):
    from resnetlib.data import localization

    fashion, _ = fake_fashion
    real, calls = localization._write_item, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(localization, "_write_item", failing)
    kwargs = {"fashion_root": fashion, "num_train_per_class": 1, "num_val": 2}
    with pytest.raises(KeyboardInterrupt):
        write_fashion_mnist_localization(tmp_path / "loc", **kwargs)
    assert json.loads((tmp_path / "loc" / "fashion_mnist_localization.json").read_text())["complete"] is False
    monkeypatch.setattr(localization, "_write_item", real)
    write_fashion_mnist_localization(tmp_path / "loc", **kwargs)
    assert len(LocalizationDataset(tmp_path / "loc", "train")) == 10


def test_standin_arguments_are_checked(tmp_path, fake_fashion):
    fashion, _ = fake_fashion
    with pytest.raises(ValueError, match=r"28\*hi = 70 px, within canvas 64"):
        write_fashion_mnist_localization(tmp_path / "a", fashion_root=fashion, scale_range=(1.0, 2.5))
    with pytest.raises(ValueError, match="num_val must be a positive integer"):
        write_fashion_mnist_localization(tmp_path / "a", fashion_root=fashion, num_val=0)
    with pytest.raises(ValueError, match="exceed what .* holds \\(20 training images in its smallest class"):
        write_fashion_mnist_localization(tmp_path / "a", fashion_root=fashion, num_train_per_class=21)
    with pytest.raises(DataNotFoundError, match="Fashion-MNIST not found"):
        write_fashion_mnist_localization(tmp_path / "b", fashion_root=tmp_path / "no-fashion")


def test_standin_on_real_fashion_mnist_boxes_cover_the_items(tmp_path):
    if find_fashion_mnist() is None:
        pytest.skip("the Fashion-MNIST IDX files are not installed (apt-get install dataset-fashion-mnist, "
                    "or put them in $RESNETLIB_DATA)")
    root = write_fashion_mnist_localization(tmp_path / "loc", num_train_per_class=1, num_val=5, seed=3)
    check_standin(root, 64, threshold=32)
