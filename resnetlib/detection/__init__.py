"""Sec. 4.3 / appendix A: Faster R-CNN with the paper's C4 ResNet design vs a VGG backbone.

- ``model``: ``build_detector`` (ResNet C4 / VGG-16 / vgg_small on torchvision's FasterRCNN), ``freeze_batchnorm``
- ``data``: COCO-format and VOC loaders, ``make_scene_dataset`` (Fashion-MNIST scenes)
- ``evaluate``: ``coco_map`` (pycocotools, percent), ``voc07_ap`` / ``voc_map`` (fractions), ``evaluate_detector``
- ``train``: ``train_detector``, a plain SGD loop
- ``figures``: ``plot_detections``, ``plot_curves``
"""

from .data import CocoDetectionDataset, VOCDetectionDataset, collate, make_scene_dataset
from .evaluate import coco_map, evaluate_detector, voc07_ap, voc_ap, voc_map
from .model import BACKBONES, build_detector, freeze_batchnorm
from .train import train_detector

__all__ = [
    "BACKBONES",
    "CocoDetectionDataset",
    "VOCDetectionDataset",
    "build_detector",
    "coco_map",
    "collate",
    "evaluate_detector",
    "freeze_batchnorm",
    "make_scene_dataset",
    "train_detector",
    "voc07_ap",
    "voc_ap",
    "voc_map",
]
