"""The loaders read real VOC XML and COCO JSON files; the scene set is exact, seeded and idempotent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlib.detection.data import (
    SCENES_LABEL,
    VOC_CLASSES,
    CocoDetectionDataset,
    VOCDetectionDataset,
    collate,
    hflip,
    make_scene_dataset,
)

VOC_XML = """<annotation>
	<folder>VOC2007</folder>
	<filename>{name}.jpg</filename>
	<source><database>The VOC2007 Database</database><annotation>PASCAL VOC2007</annotation></source>
	<size><width>80</width><height>60</height><depth>3</depth></size>
	<segmented>0</segmented>
	<object>
		<name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
		<bndbox><xmin>48</xmin><ymin>24</ymin><xmax>70</xmax><ymax>50</ymax></bndbox>
	</object>
	<object>
		<name>person</name><pose>Unspecified</pose><truncated>0</truncated><difficult>1</difficult>
		<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>20</xmax><ymax>40</ymax></bndbox>
	</object>
</annotation>
"""


def write_voc(root, names=("000005", "000007")):
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True)
    for name in names:
        Image.new("RGB", (80, 60), (120, 30, 200)).save(base / "JPEGImages" / f"{name}.jpg")
        (base / "Annotations" / f"{name}.xml").write_text(VOC_XML.format(name=name))
    (base / "ImageSets" / "Main" / "test.txt").write_text("\n".join(names) + "\n")
    return base


def test_voc_loader_reads_xml(tmp_path):
    write_voc(tmp_path)
    ds = VOCDetectionDataset(tmp_path, "2007", "test")
    assert len(ds) == 2 and ds.num_classes == 21
    image, target = ds[1]
    assert image.shape == (3, 60, 80) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    # VOC's 1-based inclusive pixels -> continuous (xmin - 1, ymin - 1, xmax, ymax)
    assert target["boxes"].tolist() == [[47.0, 23.0, 70.0, 50.0], [0.0, 1.0, 20.0, 40.0]]
    assert target["labels"].tolist() == [VOC_CLASSES.index("dog") + 1, VOC_CLASSES.index("person") + 1]
    assert target["difficult"].tolist() == [False, True]
    assert target["image_id"] == 1
    train = VOCDetectionDataset(tmp_path, "2007", "test", keep_difficult=False)
    assert train.target(0)["labels"].tolist() == [VOC_CLASSES.index("dog") + 1]


def test_voc_missing_layout_says_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"VOCdevkit/VOC2007/\{JPEGImages,Annotations"):
        VOCDetectionDataset(tmp_path, "2007", "trainval")
    write_voc(tmp_path)
    with pytest.raises(FileNotFoundError, match="image set file not found"):
        VOCDetectionDataset(tmp_path, "2007", "trainval")


def test_coco_loader(tmp_path):
    images = tmp_path / "val"
    images.mkdir()
    Image.new("RGB", (50, 40), (255, 0, 0)).save(images / "x.png")
    ann = {
        "images": [{"id": 42, "file_name": "x.png", "width": 50, "height": 40}],
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 18, "bbox": [10, 5, 20, 15], "area": 300, "iscrowd": 0},
            {"id": 2, "image_id": 42, "category_id": 1, "bbox": [0, 0, 50, 40], "area": 2000, "iscrowd": 1},
            {"id": 3, "image_id": 42, "category_id": 1, "bbox": [3, 3, 0, 10], "area": 0, "iscrowd": 0},
            {"id": 4, "image_id": 42, "category_id": 1, "bbox": [1.5, 2.5, 4, 6], "area": 24, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
    }
    (tmp_path / "instances_val.json").write_text(json.dumps(ann))
    ds = CocoDetectionDataset(images, tmp_path / "instances_val.json")
    assert ds.classes == ["__background__", "person", "dog"] and ds.num_classes == 3
    assert ds.label_to_cat == {1: 1, 2: 18} and ds.cat_to_label == {1: 1, 18: 2}
    image, target = ds[0]
    assert image.shape == (3, 40, 50) and float(image[0].mean()) == pytest.approx(1.0)
    # crowd and zero-width boxes dropped; xywh -> xyxy
    assert target["boxes"].tolist() == [[10.0, 5.0, 30.0, 20.0], [1.5, 2.5, 5.5, 8.5]]
    assert target["labels"].tolist() == [2, 1] and target["labels"].dtype == torch.int64
    assert target["image_id"] == 42
    grey = CocoDetectionDataset(images, tmp_path / "instances_val.json", mode="L")
    assert grey[0][0].shape == (1, 40, 50)
    with pytest.raises(FileNotFoundError, match="COCO annotation file not found"):
        CocoDetectionDataset(images, tmp_path / "missing.json")


def test_hflip_and_collate():
    image = torch.zeros(1, 4, 10)
    image[..., 1:3] = 1
    target = {"boxes": torch.tensor([[1.0, 0.0, 3.0, 4.0]]), "labels": torch.tensor([1])}
    flipped, t = hflip(image, target)
    assert t["boxes"].tolist() == [[7.0, 0.0, 9.0, 4.0]]
    assert flipped[..., 7:9].sum() == 8 and flipped.sum() == image.sum()
    assert target["boxes"].tolist() == [[1.0, 0.0, 3.0, 4.0]]  # input untouched
    images, targets = collate([(image, target), (flipped, t)])
    assert len(images) == 2 and targets[1] is t


def test_scene_set_boxes_are_exact_and_seeded(tmp_path):
    kwargs = {
        "num_train": 6,
        "num_test": 3,
        "canvas": 64,
        "items_per_image": (2, 3),
        "scale_range": (0.8, 1.2),
        "seed": 3,
    }
    paths = make_scene_dataset(tmp_path / "a", **kwargs)
    for key in ("train", "test"):
        assert paths[key].is_file()
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["label"] == SCENES_LABEL
    ds = CocoDetectionDataset(paths["images"], paths["train"], mode="L")
    assert len(ds) == 6 and ds.num_classes == 11
    for i in range(len(ds)):
        image, target = ds[i]
        pixels = (image[0] > 0).numpy()
        covered = np.zeros_like(pixels)
        assert 1 <= len(target["labels"]) <= 3
        assert int(target["labels"].min()) >= 1 and int(target["labels"].max()) <= 10
        for x1, y1, x2, y2 in target["boxes"].int().tolist():
            crop = pixels[y1:y2, x1:x2]
            # tight: every border row and column of the box holds an item pixel
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
            covered[y1:y2, x1:x2] = True
        assert not (pixels & ~covered).any()  # no item pixel outside the boxes
    # idempotent: a second call with the same configuration rewrites nothing
    stamp = paths["train"].stat().st_mtime_ns
    again = make_scene_dataset(tmp_path / "a", **kwargs)
    assert again["train"].stat().st_mtime_ns == stamp
    # seeded: another folder, same seed -> the same annotations and pixels
    other = make_scene_dataset(tmp_path / "b", **kwargs)
    assert json.loads(other["test"].read_text()) == json.loads(paths["test"].read_text())
    first = min(paths["images"].iterdir()).name
    assert (paths["images"] / first).read_bytes() == (other["images"] / first).read_bytes()


def test_scene_set_rejects_items_that_do_not_fit(tmp_path):
    with pytest.raises(ValueError, match="fit"):
        make_scene_dataset(tmp_path, num_train=1, num_test=1, canvas=32, scale_range=(1.0, 2.0))
