"""Appendix C: ImageNet localization with a per-class RPN (Tables 13 and 14).

- ``model``: ``PerClassRPN`` (per-class logistic outputs and box regressors per anchor, 8 sampled anchors per
  image, a classification head) and ``build_localizer`` on a ResNet's C4 trunk
- ``data``: ``localization_sets`` (ILSVRC CLS-LOC, or Fashion-MNIST canvases written in that layout)
- ``evaluate``: ``localization_errors`` (ILSVRC's rule: right class and IoU >= 0.5)

It trains through ``resnetlib.detection.train`` (a ``DetectorConfig`` with ``model.head: per_class_rpn``).
"""

from .evaluate import localization_errors
from .model import PerClassRPN, build_localizer

__all__ = ["PerClassRPN", "build_localizer", "localization_errors"]
