"""Detection metrics: COCO mAP (pycocotools) and the PASCAL VOC mAP (our port of the devkit's logic).

Units: ``coco_map`` returns percent (as Table 8 prints); the VOC functions return fractions in [0, 1]
(as the devkit does); ``evaluate_detector`` reports everything in percent, keys ending in ``_map*``.

Boxes are continuous (x1, y1, x2, y2); the VOC loader already turned VOC's 1-based inclusive pixel
boxes into these (xmin - 1, ymin - 1, xmax, ymax), so IoU here has no "+1" terms and equals the
devkit's IoU on the original boxes.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["class_ap_table", "coco_from_targets", "coco_map", "evaluate_detector", "objects_per_class", "predict",
           "voc07_ap", "voc_ap", "voc_map"]


def _np(x: Any, dtype=np.float64) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


# -------------------------------------------------------------------------------------------- COCO


def coco_from_targets(targets: Sequence[Mapping[str, Any]], num_classes: int):
    """An in-memory pycocotools ``COCO`` ground truth from target dicts (e.g. for VOC).

    Category ids are the contiguous labels; VOC ``difficult`` boxes become ``iscrowd=1`` so that the
    COCO evaluation ignores them, as the VOC one does.
    """
    from pycocotools.coco import COCO

    images, anns = [], []
    for t in targets:
        image_id = int(t["image_id"])
        boxes, labels = _np(t["boxes"]).reshape(-1, 4), _np(t["labels"], np.int64)
        difficult = _np(t.get("difficult", np.zeros(len(labels))), bool)
        size = t.get("size")  # (h, w) if known; COCOeval does not need it for bbox
        images.append({"id": image_id, **({"height": int(size[0]), "width": int(size[1])} if size else {})})
        for box, label, diff in zip(boxes, labels, difficult, strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [float(box[0]), float(box[1]), w, h],
                    "area": w * h,
                    "iscrowd": int(diff),
                }
            )
    coco = COCO()
    coco.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": c, "name": str(c)} for c in range(1, num_classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_map(
    detections: Mapping[int, Mapping[str, Any]],
    coco_gt,
    *,
    label_to_cat: Mapping[int, int] | None = None,
    max_dets: int = 100,
) -> dict[str, float]:
    """COCO box AP of ``detections`` against ``coco_gt``, in percent.

    Args:
        detections: image id -> {"boxes" [N,4] xyxy, "scores" [N], "labels" [N]} (a model's output).
            Every image evaluated must be a key, also those with no detection (empty tensors); only
            these images are evaluated.
        coco_gt: a pycocotools ``COCO`` ground truth.
        label_to_cat: contiguous label -> COCO category id (identity when None).
    Returns ``{"map": AP@[.5:.95], "map50": AP@.5}``; both 0 when there is no detection at all.
    """
    image_ids = sorted(int(i) for i in detections)
    if not image_ids:
        raise ValueError("coco_map: no images to evaluate (detections is empty)")
    if not coco_gt.getAnnIds(imgIds=image_ids):
        raise ValueError("coco_map: the ground truth has no annotation on the evaluated images")
    results = [r for i in image_ids for r in _coco_results(i, detections[i], label_to_cat)]
    if not results:
        return {"map": 0.0, "map50": 0.0}
    stats = _coco_stats(coco_gt, results, image_ids, max_dets)
    # stats are -1 where no ground truth exists for the setting; that cannot happen for the two we report
    ap, ap50 = (max(float(stats[i]), 0.0) * 100.0 for i in (0, 1))
    return {"map": ap, "map50": ap50}


def _coco_results(
    image_id: int, det: Mapping[str, Any], label_to_cat: Mapping[int, int] | None
) -> list[dict]:
    """One image's detections in COCO's result format (xywh boxes, category ids)."""
    boxes = _np(det["boxes"]).reshape(-1, 4)
    scores, labels = _np(det["scores"]), _np(det["labels"], np.int64)
    results = []
    for box, score, label in zip(boxes, scores, labels, strict=True):
        cat = int(label_to_cat[int(label)]) if label_to_cat is not None else int(label)
        x1, y1, x2, y2 = (float(v) for v in box)
        results.append(
            {
                "image_id": image_id,
                "category_id": cat,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(score),
            }
        )
    return results


def _coco_stats(coco_gt, results: list[dict], image_ids: list[int], max_dets: int):
    """pycocotools' summary statistics of ``results`` on ``image_ids`` (its printing silenced)."""
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = image_ids
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


# --------------------------------------------------------------------------------------------- VOC


def voc07_ap(recall: Sequence[float] | np.ndarray, precision: Sequence[float] | np.ndarray) -> float:
    """VOC2007's 11-point interpolated AP: the mean over t in {0, 0.1, ..., 1} of max precision at recall >= t.

    Thresholds are ``i / 10`` (not a float ``arange``), so a recall of exactly 0.3 counts for t = 0.3.
    Fraction in [0, 1].
    """
    rec, prec = _np(recall), _np(precision)
    ap = 0.0
    for i in range(11):
        mask = rec >= i / 10
        ap += (float(prec[mask].max()) if mask.any() else 0.0) / 11.0
    return ap


def voc_ap(recall: Sequence[float] | np.ndarray, precision: Sequence[float] | np.ndarray) -> float:
    """VOC2010+ AP: area under the precision envelope (every recall change counts). Fraction."""
    mrec = np.concatenate(([0.0], _np(recall), [1.0]))
    mpre = np.concatenate(([0.0], _np(precision), [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix1, iy1 = np.maximum(boxes[:, 0], box[0]), np.maximum(boxes[:, 1], box[1])
    ix2, iy2 = np.minimum(boxes[:, 2], box[2]), np.minimum(boxes[:, 3], box[3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, np.finfo(np.float64).eps)


def voc_map(
    detections: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    num_classes: int,
    iou_threshold: float = 0.5,
    use_07_metric: bool = True,
) -> dict[str, Any]:
    """PASCAL VOC mean AP, following the devkit / py-faster-rcnn ``voc_eval``. Fractions in [0, 1].

    Args:
        detections: per image, {"boxes" [N,4], "scores" [N], "labels" [N]}.
        ground_truths: per image (same order), {"boxes", "labels", optional "difficult" [M] bool}.
        num_classes: classes + 1 (background = label 0 is not evaluated), as ``build_detector`` takes.
        use_07_metric: the 11-point metric of VOC2007 (``voc07_ap``); False = area (``voc_ap``).

    Per class, all detections are sorted by score (descending, ties in input order) and matched
    greedily: a detection whose best IoU with a ground-truth box of its image exceeds
    ``iou_threshold`` is a true positive if that box is not difficult and not yet matched, a false
    positive if it was already matched (a duplicate), and ignored (neither) if the box is difficult.
    Any other detection is a false positive. Recall counts the non-difficult boxes. Classes without a
    non-difficult ground-truth box get AP NaN and are left out of the mean.

    Returns ``{"map": float, "ap": {label: float}}``.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection entries for {len(ground_truths)} ground-truth images")
    gts = [_voc_ground_truth(g, num_classes) for g in ground_truths]
    dets = [
        (_np(d["boxes"]).reshape(-1, 4), _np(d["scores"]), _np(d["labels"], np.int64)) for d in detections
    ]
    ap_of = voc07_ap if use_07_metric else voc_ap
    aps = {c: _class_ap(c, gts, dets, iou_threshold, ap_of) for c in range(1, num_classes)}
    valid = [v for v in aps.values() if not math.isnan(v)]
    return {"map": float(np.mean(valid)) if valid else math.nan, "ap": aps}


def _voc_ground_truth(g: Mapping[str, Any], num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes, labels, difficult) of one image, the labels checked against ``num_classes``."""
    labels = _np(g["labels"], np.int64)
    if labels.size and (labels.min() < 1 or labels.max() >= num_classes):
        raise ValueError(
            f"ground-truth label {int(labels.max())} outside 1..{num_classes - 1}: num_classes counts "
            "the background (VOC: 21)"
        )
    difficult = _np(g.get("difficult", np.zeros(len(labels))), bool)
    return _np(g["boxes"]).reshape(-1, 4), labels, difficult


def _class_ap(c: int, gts: list, dets: list, iou_threshold: float, ap_of) -> float:
    """AP of class ``c`` over all images; NaN when it has no non-difficult ground-truth box."""
    class_gt = []
    npos = 0
    for boxes, labels, difficult in gts:
        m = labels == c
        class_gt.append((boxes[m], difficult[m], np.zeros(int(m.sum()), dtype=bool)))
        npos += int((~difficult[m]).sum())
    if npos == 0:
        return math.nan
    image_idx, scores, boxes = _class_detections(c, dets)
    tp, fp = _match(class_gt, image_idx, scores, boxes, iou_threshold)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / npos
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return ap_of(recall, precision)


def _class_detections(c: int, dets: list) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(image index, score, box) of every detection of class ``c``, in input order."""
    image_idx, scores, boxes = [], [], []
    for i, (b, s, lab) in enumerate(dets):
        m = lab == c
        image_idx.extend([i] * int(m.sum()))
        scores.append(s[m])
        boxes.append(b[m])
    scores_all = np.concatenate(scores) if scores else np.zeros(0)
    return image_idx, scores_all, np.concatenate(boxes) if boxes else np.zeros((0, 4))


def _match(class_gt: list, image_idx: list[int], scores: np.ndarray, boxes: np.ndarray, iou_threshold: float):
    """True/false positive flags of the detections in descending score order (ties in input order)."""
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for k, j in enumerate(order):
        gt_boxes, gt_difficult, matched = class_gt[image_idx[j]]
        if len(gt_boxes) == 0:
            fp[k] = 1
            continue
        overlaps = _iou(boxes[j], gt_boxes)
        best = int(np.argmax(overlaps))
        if overlaps[best] <= iou_threshold:
            fp[k] = 1
        elif gt_difficult[best]:
            continue  # a difficult box: neither a true nor a false positive
        elif matched[best]:
            fp[k] = 1  # a duplicate
        else:
            tp[k], matched[best] = 1, True
    return tp, fp


# --------------------------------------------------------------------------------------- the model


def _base_dataset(dataset: Any) -> Any:
    while hasattr(dataset, "dataset"):  # torch.utils.data.Subset and friends
        dataset = dataset.dataset
    return dataset


@torch.no_grad()
def predict(
    model: torch.nn.Module, loader: Iterable, device: str | torch.device
) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, Any]]]:
    """Run ``model`` in eval mode over ``loader`` (batches of (images, targets)); outputs on the CPU."""
    was_training = model.training
    model.eval()
    outputs, targets = [], []
    try:
        for images, batch_targets in loader:
            out = model([img.to(device) for img in images])
            outputs.extend({k: v.detach().cpu() for k, v in o.items()} for o in out)
            targets.extend(batch_targets)
    finally:
        model.train(was_training)
    return outputs, targets


def evaluate_detector(
    model: torch.nn.Module,
    loader: Any,
    device: str | torch.device,
    *,
    coco_gt=None,
    label_to_cat: Mapping[int, int] | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """COCO mAP, mAP@.5, VOC07 11-point mAP and VOC2010+ (area) mAP, in percent, of ``model`` on ``loader``.

    Returns ``coco_map``, ``coco_map50``, ``voc07_map``, ``voc_map``, ``voc07_ap`` (label -> AP),
    ``objects`` (label -> ground-truth objects in the test images), ``num_images``, ``num_detections``.

    The COCO ground truth is ``coco_gt``, else the loader's data set's ``coco`` (a
    ``CocoDetectionDataset``), else one built from the targets (``coco_from_targets``, e.g. for VOC).
    """
    outputs, targets = predict(model, loader, device)
    base = _base_dataset(getattr(loader, "dataset", None))
    if num_classes is None:
        num_classes = getattr(base, "num_classes", None) or int(
            model.roi_heads.box_predictor.cls_score.out_features
        )
    coco_gt, label_to_cat = _coco_ground_truth(base, targets, num_classes, coco_gt, label_to_cat)
    by_id = {int(t["image_id"]): o for t, o in zip(targets, outputs, strict=True)}
    coco = coco_map(by_id, coco_gt, label_to_cat=label_to_cat)
    voc = voc_map(outputs, targets, num_classes, use_07_metric=True)
    voc_area = voc_map(outputs, targets, num_classes, use_07_metric=False)
    return {
        "coco_map": coco["map"],
        "coco_map50": coco["map50"],
        "voc07_map": voc["map"] * 100.0,
        "voc_map": voc_area["map"] * 100.0,
        "voc07_ap": {int(k): v * 100.0 for k, v in voc["ap"].items()},
        "objects": objects_per_class(targets, num_classes),
        "num_images": len(outputs),
        "num_detections": int(sum(len(o["scores"]) for o in outputs)),
    }


def objects_per_class(targets: Iterable[Mapping[str, Any]], num_classes: int) -> dict[int, int]:
    """Ground-truth objects per label 1..num_classes-1 (VOC's "difficult" ones included) in ``targets``."""
    counts = dict.fromkeys(range(1, num_classes), 0)
    for t in targets:
        for label in _np(t["labels"], np.int64).tolist():
            counts[int(label)] = counts.get(int(label), 0) + 1
    return counts


def class_ap_table(metrics: Mapping[str, Any], classes: Sequence[str], **keys: Any) -> list[dict[str, Any]]:
    """The per-class AP table of one evaluated detector (Tables 7-9 report the mean; the per-class APs say
    which classes make it): one row per class with ``keys`` (e.g. backbone, seed), the class name, its
    ground-truth objects and its VOC07 AP@.5 in percent (NaN for a class without ground truth)."""
    objects = metrics.get("objects", {})
    return [{**keys, "class": classes[label], "objects": objects.get(label, 0), "ap50": ap}
            for label, ap in sorted(metrics["voc07_ap"].items())]


def _coco_ground_truth(base: Any, targets: list, num_classes: int, coco_gt, label_to_cat):
    """The given ground truth, else the data set's own ``coco``, else one built from the targets."""
    if coco_gt is None and getattr(base, "coco", None) is not None:
        return base.coco, label_to_cat or base.label_to_cat
    if coco_gt is None:
        return coco_from_targets(targets, num_classes), None
    return coco_gt, label_to_cat
