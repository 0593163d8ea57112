"""Sec. 4.3 / appendix A: Faster R-CNN with the paper's C4 ResNet design vs a VGG backbone.

- ``config``: ``DetectorConfig``, the typed training configuration of one detector (hashed by the run cache)
- ``model``: ``build_detector`` (ResNet C4 / VGG-16 / vgg_small / vgg_c4 on torchvision's FasterRCNN),
  ``freeze_batchnorm``, ``count_macs`` (the whole detector's multiply-adds per image, training and test)
- ``pretrain``: Fashion-MNIST classification pretraining of the backbones (the small profiles' ImageNet),
  through the run cache
- ``data``: COCO-format and VOC loaders, ``make_scene_dataset`` (Fashion-MNIST scenes), ``open_datasets``
- ``evaluate``: ``coco_map`` (pycocotools, percent), ``voc07_ap`` / ``voc_map`` (fractions),
  ``evaluate_detector``
- ``train``: ``train_detector`` (SGD on the engine's lr schedule, checkpointed), ``cached_detector`` (the run
  cache of ``resnetlib.train.runs``: reuse, resume)
- ``context``: global context (appendix A): the whole image's feature joined to each RoI's
- ``multiscale``: multi-scale training (drawn image sides) and testing (two adjacent pyramid scales, maxout)
- ``inference``: ``ImprovedInference`` (box refinement with NMS 0.3 and box voting; multi-scale testing),
  ``inference_macs``
- figures: ``resnetlib.report.detection_figures`` (presentation lives in report/)
"""

from .config import DetectorConfig
from .data import CocoDetectionDataset, VOCDetectionDataset, collate, make_scene_dataset, open_datasets
from .evaluate import coco_map, evaluate_detector, voc07_ap, voc_ap, voc_map
from .inference import ImprovedInference, InferenceOptions
from .model import BACKBONES, build_detector, freeze_batchnorm
from .train import cached_detector, train_detector

__all__ = [
    "BACKBONES",
    "CocoDetectionDataset",
    "DetectorConfig",
    "ImprovedInference",
    "InferenceOptions",
    "VOCDetectionDataset",
    "build_detector",
    "cached_detector",
    "coco_map",
    "collate",
    "evaluate_detector",
    "freeze_batchnorm",
    "make_scene_dataset",
    "open_datasets",
    "train_detector",
    "voc07_ap",
    "voc_ap",
    "voc_map",
]
