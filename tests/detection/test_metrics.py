"""VOC AP on cases computed by hand, and COCO mAP (pycocotools) on a tiny hand-made ground truth."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from resnetlib.detection.data import CocoDetectionDataset
from resnetlib.detection.evaluate import coco_from_targets, coco_map, voc07_ap, voc_ap, voc_map

A = [0.0, 0.0, 10.0, 10.0]
B = [20.0, 20.0, 40.0, 40.0]
C = [50.0, 0.0, 60.0, 20.0]


def gt(boxes, labels, difficult=None):
    out = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(labels)}
    if difficult is not None:
        out["difficult"] = torch.tensor(difficult, dtype=torch.bool)
    return out


def det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


# ------------------------------------------------------------------------------------ 11-point AP


def test_voc07_ap_perfect_and_empty():
    assert voc07_ap([1.0], [1.0]) == pytest.approx(1.0)
    assert voc07_ap([], []) == 0.0


def test_voc07_ap_half_recall():
    # precision 1 up to recall 0.5: thresholds 0, .1, .2, .3, .4, .5 -> 6 of 11 points
    assert voc07_ap([0.5], [1.0]) == pytest.approx(6 / 11)


def test_voc07_ap_threshold_is_inclusive_at_tenths():
    # recall exactly 0.3 (3 of 10) counts for t = 0.3: thresholds 0..0.3 -> 4 points
    assert voc07_ap([3 / 10], [1.0]) == pytest.approx(4 / 11)


def test_voc_area_ap():
    # recall .5 at precision 1, then 1.0 at precision .5: area .5 * 1 + .5 * .5
    assert voc_ap([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.75)


# ------------------------------------------------------------------------------------- voc_map


def test_perfect_detections_give_one():
    gts = [gt([A, B], [1, 2]), gt([C], [1])]
    dets = [det([A, B], [0.9, 0.8], [1, 2]), det([C], [0.7], [1])]
    result = voc_map(dets, gts, num_classes=3)
    assert result["map"] == pytest.approx(1.0)
    assert result["ap"] == {1: pytest.approx(1.0), 2: pytest.approx(1.0)}


def test_a_missed_object():
    # class 1 has 2 objects, one detected: recall .5 at precision 1 -> 6/11
    result = voc_map([det([A], [0.9], [1])], [gt([A, B], [1, 1])], num_classes=2)
    assert result["map"] == pytest.approx(6 / 11)


def test_duplicate_detection_is_a_false_positive():
    # A (0.9) tp, A again (0.8) duplicate -> fp, B (0.7) tp.
    # recall [.5, .5, 1], precision [1, .5, 2/3]: t = 0...0.5 -> 1 (6 points); t = .6...1 -> 2/3 (5 points)
    result = voc_map([det([A, A, B], [0.9, 0.8, 0.7], [1, 1, 1])], [gt([A, B], [1, 1])], num_classes=2)
    assert result["map"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    # were the duplicate ignored, AP would be 1
    assert result["map"] < 0.85


def test_shifted_box_below_iou_half_is_a_false_positive():
    shifted = [5.0, 0.0, 15.0, 10.0]  # IoU with A = 50 / 150 = 1/3
    # shifted (0.9) fp, exact B (0.8) tp: recall [0, .5], precision [0, .5] -> t = 0...0.5: .5 -> 6 * .5 / 11
    result = voc_map([det([shifted, B], [0.9, 0.8], [1, 1])], [gt([A, B], [1, 1])], num_classes=2)
    assert result["map"] == pytest.approx(3 / 11)
    # alone, it finds nothing
    assert voc_map([det([shifted], [0.9], [1])], [gt([A], [1])], num_classes=2)["map"] == 0.0


def test_iou_must_exceed_the_threshold():
    half = [0.0, 0.0, 10.0, 20.0]  # IoU with A: 100 / 200 = 0.5 exactly -> not > 0.5 -> fp (as the devkit)
    assert voc_map([det([half], [0.9], [1])], [gt([A], [1])], num_classes=2)["map"] == 0.0
    more = [0.0, 0.0, 10.0, 19.0]  # IoU 100 / 190 > 0.5 -> tp
    assert voc_map([det([more], [0.9], [1])], [gt([A], [1])], num_classes=2)["map"] == pytest.approx(1.0)


def test_wrong_class_is_a_false_positive():
    result = voc_map([det([A], [0.9], [2])], [gt([A], [1])], num_classes=3)
    assert result["ap"][1] == 0.0
    assert math.isnan(result["ap"][2])  # no ground truth of class 2: left out of the mean
    assert result["map"] == 0.0


def test_difficult_boxes_are_ignored():
    # D is difficult: a detection on it is neither tp nor fp, and missing it costs no recall.
    D = B
    gts = [gt([A, D], [1, 1], difficult=[False, True])]
    assert voc_map([det([D, A], [0.95, 0.9], [1, 1])], gts, num_classes=2)["map"] == pytest.approx(1.0)
    assert voc_map([det([A], [0.9], [1])], gts, num_classes=2)["map"] == pytest.approx(1.0)
    # counted as a normal object, the miss would halve recall
    assert voc_map([det([A], [0.9], [1])], [gt([A, D], [1, 1])], num_classes=2)["map"] == pytest.approx(
        6 / 11
    )


def test_mean_over_classes_and_empty_detections():
    gts = [gt([A], [1]), gt([B], [2])]
    dets = [det([A], [0.9], [1]), det([], [], [])]
    result = voc_map(dets, gts, num_classes=3)
    assert result["ap"] == {1: pytest.approx(1.0), 2: 0.0}
    assert result["map"] == pytest.approx(0.5)


def test_area_metric_and_labels_out_of_range():
    result = voc_map(
        [det([A, A, B], [0.9, 0.8, 0.7], [1, 1, 1])], [gt([A, B], [1, 1])], 2, use_07_metric=False
    )
    # recall [.5, .5, 1], precision [1, .5, 2/3] -> envelope 1 to recall .5, 2/3 to 1
    assert result["map"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    with pytest.raises(ValueError, match="num_classes counts the background"):
        voc_map([det([A], [0.9], [20])], [gt([A], [20])], num_classes=20)


# ------------------------------------------------------------------------------------------- COCO


def write_coco(tmp_path):
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 48)).save(images_dir / name)
    ann = {
        "images": [
            {"id": 10, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 20, "file_name": "b.png", "width": 64, "height": 48},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 3, "bbox": [2, 3, 20, 10], "area": 200, "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [30, 20, 25, 20], "area": 500, "iscrowd": 0},
            {"id": 3, "image_id": 20, "category_id": 7, "bbox": [5, 5, 40, 30], "area": 1200, "iscrowd": 0},
        ],
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(ann))
    return images_dir, path


def perfect_detections(ds):
    out = {}
    for i in range(len(ds)):
        t = ds.target(i)
        out[t["image_id"]] = {
            "boxes": t["boxes"],
            "scores": torch.ones(len(t["labels"])),
            "labels": t["labels"],
        }
    return out


def test_coco_map_perfect_is_100(tmp_path):
    ds = CocoDetectionDataset(*write_coco(tmp_path))
    result = coco_map(perfect_detections(ds), ds.coco, label_to_cat=ds.label_to_cat)
    assert result == {"map": pytest.approx(100.0), "map50": pytest.approx(100.0)}


def test_coco_map_wrong_category_mapping_and_no_detections(tmp_path):
    ds = CocoDetectionDataset(*write_coco(tmp_path))
    dets = perfect_detections(ds)
    # without the label -> category id mapping, labels 1, 2 are not categories 3, 7: nothing matches
    assert coco_map(dets, ds.coco)["map"] == 0.0
    empty = {
        i: {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)} for i in dets
    }
    assert coco_map(empty, ds.coco, label_to_cat=ds.label_to_cat) == {"map": 0.0, "map50": 0.0}


def test_coco_map_half_the_objects(tmp_path):
    ds = CocoDetectionDataset(*write_coco(tmp_path))
    dets = perfect_detections(ds)
    dets[20] = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}
    result = coco_map(dets, ds.coco, label_to_cat=ds.label_to_cat)
    # "cat": 1/1 found -> AP 1; "dog": 1 of 2 found at top score -> precision 1 up to recall .5 -> AP ~ .5
    assert result["map50"] == pytest.approx(100 * (1 + 51 / 101) / 2, abs=0.01)


def test_coco_from_targets_round_trip():
    targets = [dict(gt([A, B], [1, 2], difficult=[False, True]), image_id=5)]
    coco = coco_from_targets(targets, num_classes=3)
    dets = {5: {"boxes": torch.tensor([A]), "scores": torch.tensor([1.0]), "labels": torch.tensor([1])}}
    # the difficult box becomes a crowd (ignored) box: the result is perfect on the rest
    assert coco_map(dets, coco)["map"] == pytest.approx(100.0)


def test_objects_are_counted_per_class_and_each_class_gets_a_row_of_its_ap():
    from resnetlib.detection.evaluate import class_ap_table, objects_per_class

    targets = [{"labels": torch.tensor([1, 1, 3])}, {"labels": torch.tensor([3])}]
    objects = objects_per_class(targets, num_classes=4)
    assert objects == {1: 2, 2: 0, 3: 2}
    metrics = {"voc07_ap": {1: 50.0, 2: math.nan, 3: 100.0}, "objects": objects}
    rows = class_ap_table(metrics, ["__background__", "cat", "dog", "cow"], backbone="resnet18")
    assert [(r["class"], r["objects"], r["backbone"]) for r in rows] == [("cat", 2, "resnet18"), ("dog", 0, "resnet18"),
                                                                         ("cow", 2, "resnet18")]
    assert rows[0]["ap50"] == 50.0 and math.isnan(rows[1]["ap50"])
