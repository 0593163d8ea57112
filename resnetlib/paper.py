"""The paper's reported numbers, each once, with the table or figure it comes from.

Every test, experiment and report reads its reference values from here (``paper.value(key)`` or
``paper.get(key)``), so no number of the paper is typed twice. Errors are in percent.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reported", "REPORTED", "get", "value", "keys", "CIFAR_PROTOCOL", "IMAGENET_PROTOCOL",
           "DETECTION_TEST_SHORTER_SIDES"]


@dataclass(frozen=True)
class Reported:
    key: str
    value: float
    unit: str
    ref: str
    what: str


def _entries() -> list[Reported]:
    out: list[Reported] = []

    def add(key: str, value: float, unit: str, ref: str, what: str) -> None:
        out.append(Reported(key, value, unit, ref, what))

    def add_top1_top5(table: str, rows: dict[str, tuple[float, float]], testing: str) -> None:
        """``<table>.top1.<net>`` and ``<table>.top5.<net>`` for each (top-1, top-5) row of an ImageNet table."""
        ref = table.replace("table", "Table ")
        for name, errors in rows.items():
            for k, err in zip(("top1", "top5"), errors):
                add(f"{table}.{k}.{name}", err, "%", ref, f"{name} ImageNet top-{k[-1]} error ({testing})")

    # Table 1 (and Fig. 3 for VGG-19): multiply-adds of one 224x224 forward pass.
    for depth, macs in {18: 1.8e9, 34: 3.6e9, 50: 3.8e9, 101: 7.6e9, 152: 11.3e9}.items():
        add(f"table1.macs.resnet{depth}", macs, "multiply-adds", "Table 1", f"ResNet-{depth} FLOPs")
    add("table1.macs.vgg19", 19.6e9, "multiply-adds", "Table 1 / Fig. 3", "VGG-19 FLOPs")

    # Table 6: CIFAR-10 params and test error.
    params = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6, 1202: 19.4e6}
    errors = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
    for depth in params:
        add(f"table6.params.resnet{depth}", params[depth], "parameters", "Table 6", f"ResNet-{depth} #params")
        add(f"table6.error.resnet{depth}", errors[depth], "%", "Table 6", f"ResNet-{depth} CIFAR-10 test error")
    add("table6.error.resnet110_mean", 6.61, "%", "Table 6", "ResNet-110 test error, mean of 5 runs")
    add("table6.error.resnet110_std", 0.16, "%", "Table 6", "ResNet-110 test error, std of 5 runs")

    # Table 2: ImageNet val top-1 error, 10-crop.
    for name, err in {"plain18": 27.94, "plain34": 28.54, "resnet18": 27.88, "resnet34": 25.03}.items():
        add(f"table2.top1.{name}", err, "%", "Table 2", f"{name} ImageNet top-1 error (10-crop)")

    # Table 3: ImageNet val error, 10-crop testing.
    table3 = {
        "vgg16": (28.07, 9.33),
        "plain34": (28.54, 10.02),
        "resnet34_A": (25.03, 7.76),
        "resnet34_B": (24.52, 7.46),
        "resnet34_C": (24.19, 7.40),
        "resnet50": (22.85, 6.71),
        "resnet101": (21.75, 6.05),
        "resnet152": (21.43, 5.71),
    }
    add_top1_top5("table3", table3, "10-crop")

    # Table 4: single-model ImageNet val error with the fully-convolutional multi-scale testing of Sec. 3.4
    # (shorter side in {224, 256, 384, 480, 640}, scores averaged); every ResNet row is on the validation set.
    table4 = {
        "resnet34_B": (21.84, 5.71),
        "resnet34_C": (21.53, 5.60),
        "resnet50": (20.74, 5.25),
        "resnet101": (19.87, 4.60),
        "resnet152": (19.38, 4.49),
    }
    add_top1_top5("table4", table4, "multi-scale, single model")

    # Table 5: the ILSVRC'15 ensemble ("six models of different depth"), top-5 error on the *test* set.
    add("table5.top5.resnet_ensemble", 3.57, "%", "Table 5", "ensemble of six ResNets, ImageNet top-5 error (test set)")

    # Tables 7 and 8: Faster R-CNN detection, VGG-16 vs ResNet-101 backbones.
    det = {
        "table7.voc07_map": (73.2, 76.4, "VOC 2007 test mAP"),
        "table7.voc12_map": (70.4, 73.8, "VOC 2012 test mAP"),
        "table8.coco_map50": (41.5, 48.4, "COCO val mAP@.5"),
        "table8.coco_map": (21.2, 27.2, "COCO val mAP@[.5,.95]"),
    }
    for key, (vgg, res, what) in det.items():
        ref = "Table 7" if key.startswith("table7") else "Table 8"
        add(f"{key}.vgg16", vgg, "%", ref, f"{what}, VGG-16")
        add(f"{key}.resnet101", res, "%", ref, f"{what}, ResNet-101")

    # Table 9: COCO detection improvements (Faster R-CNN, ResNet-101), trained on COCO train, tested on val;
    # each row adds to the one above. The baselines are Table 8's numbers (keys table8.*).
    table9 = {
        "box_refinement": (49.9, 29.9),
        "context": (51.1, 30.0),
        "multiscale_testing": (53.8, 32.5),
    }
    for row, (map50, map_coco) in table9.items():
        add(f"table9.coco_map50.{row}", map50, "%", "Table 9", f"COCO val mAP@.5, ResNet-101 +{row.replace('_', ' ')}")
        add(f"table9.coco_map.{row}", map_coco, "%", "Table 9",
            f"COCO val mAP@[.5,.95], ResNet-101 +{row.replace('_', ' ')}")
    # Tables 10 and 11: "baseline+++" (box refinement, context, multi-scale testing; COCO data added).
    add("table10.voc07_map.resnet101_plus", 85.6, "%", "Table 10", "VOC 2007 test mAP, ResNet-101 baseline+++")
    add("table11.voc12_map.resnet101_plus", 83.8, "%", "Table 11", "VOC 2012 test mAP, ResNet-101 baseline+++")
    # Table 12: ImageNet detection (DET) mAP@.5, Faster R-CNN with Table 9's improvements, ResNet-101.
    for row, (val2, test) in {"single": (60.5, 58.8), "ensemble": (63.6, 62.1)}.items():
        add(f"table12.det_map.{row}_val2", val2, "%", "Table 12", f"ImageNet DET val2 mAP, {row} model(s)")
        add(f"table12.det_map.{row}_test", test, "%", "Table 12", f"ImageNet DET test mAP, {row} model(s)")

    # Table 13: ImageNet localization error on val (per-class RPN on ResNet-101). "GT class": the true class
    # is given (oracle); "predicted": top-5 localization error with ResNet-101's predicted classes.
    add("table13.loc_err_gt.rpn_center_crop", 13.3, "%", "Table 13",
        "localization error, true class given, RPN ResNet-101, 224 centre crop")
    add("table13.loc_err_gt.rpn_dense", 11.7, "%", "Table 13",
        "localization error, true class given, RPN ResNet-101, dense multi-scale testing")
    add("table13.top5_loc_err.rpn_dense", 14.4, "%", "Table 13",
        "top-5 localization error, predicted classes, RPN ResNet-101, dense testing")
    add("table13.top5_loc_err.rpn_rcnn_dense", 10.6, "%", "Table 13",
        "top-5 localization error, predicted classes, RPN+RCNN ResNet-101, dense testing")
    add("table13.top5_loc_err.ensemble", 8.9, "%", "Table 13", "top-5 localization error, ensemble, dense testing")
    # Table 14: top-5 localization error of the ILSVRC'15 entry (an ensemble) on val and test.
    add("table14.top5_loc_err.ours_val", 8.9, "%", "Table 14", "top-5 localization error (val), ILSVRC'15 ensemble")
    add("table14.top5_loc_err.ours_test", 9.0, "%", "Table 14", "top-5 localization error (test), ILSVRC'15 ensemble")
    return out


REPORTED: dict[str, Reported] = {r.key: r for r in _entries()}


def get(key: str) -> Reported:
    try:
        return REPORTED[key]
    except KeyError:
        raise KeyError(f"no reported number {key!r}; see resnetlib.paper.keys()") from None


def value(key: str) -> float:
    return get(key).value


def keys(prefix: str = "") -> list[str]:
    return sorted(k for k in REPORTED if k.startswith(prefix))


#: Sec. 4.2: the CIFAR-10 training protocol.
CIFAR_PROTOCOL = {
    "batch_size": 128,
    "lr": 0.1,
    "milestones": (32_000, 48_000),
    "lr_decay": 0.1,
    "iterations": 64_000,
    "weight_decay": 1e-4,
    "momentum": 0.9,
    "train_size": 45_000,
    "val_size": 5_000,
    "padding": 4,
    "warmup_lr": 0.01,
    "warmup_until_train_error": 80.0,
    "warmup_iterations_approx": 400,
}

#: Sec. 3.4: the ImageNet training protocol.
IMAGENET_PROTOCOL = {
    "batch_size": 256,
    "lr": 0.1,
    "lr_decay": 0.1,
    "iterations": 600_000,
    "weight_decay": 1e-4,
    "momentum": 0.9,
    "scale_range": (256, 480),
    "crop": 224,
    # "For best results, we adopt the fully-convolutional form ... and average the scores at multiple
    # scales (images are resized such that the shorter side is in {224, 256, 384, 480, 640})."
    "test_shorter_sides": (224, 256, 384, 480, 640),
}

#: Appendix B: Faster R-CNN's multi-scale testing, shorter side s in {200, 400, 600, 800, 1000} (single
#: scale: 600).
DETECTION_TEST_SHORTER_SIDES = (200, 400, 600, 800, 1000)
