"""Appendix C: ImageNet localization with a per-class RPN (Tables 13 and 14).

- ``model``: ``PerClassRPN`` (per-class logistic outputs and box regressors per anchor, 8 sampled anchors per
  image, a classification head) and ``build_localizer`` on a ResNet's C4 trunk
- ``data``: ``localization_sets`` (ILSVRC CLS-LOC, or Fashion-MNIST canvases written in that layout)
- ``rcnn``: ``RCNNStage`` / ``build_rcnn_stage``, the "RPN + RCNN" second stage (re-scores and regresses
  the RPN's proposals of the predicted classes, on RoI-aligned C4 features)
- ``ensemble``: ``ensemble_outputs`` (mean class scores, score-weighted mean boxes per class)
- ``evaluate``: ``localization_errors`` (ILSVRC's rule: right class and IoU >= 0.5)

It trains through ``resnetlib.detection.train`` (a ``DetectorConfig`` with ``model.head: per_class_rpn``).
"""

from .ensemble import ensemble_outputs
from .evaluate import localization_errors
from .model import PerClassRPN, build_localizer
from .rcnn import RCNNStage, build_rcnn_stage

__all__ = ["PerClassRPN", "RCNNStage", "build_localizer", "build_rcnn_stage", "ensemble_outputs",
           "localization_errors"]
