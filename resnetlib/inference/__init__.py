"""Testing trained ImageNet-style nets (Sec. 3.4): centre crop, 10-crop, the fully-convolutional
multi-scale testing of Table 4, and ensembles of such predictions (Table 5).

>>> from resnetlib import inference
>>> preds = inference.predict(net, "data/imagenet/val", "multiscale", crop=224)
>>> preds.errors()                                   # {"top1": ..., "top5": ...}
>>> inference.ensemble([preds_50, preds_101, preds_152]).errors()
"""

from .ensemble import ensemble
from .testing import METHODS, Predictions, predict, scaled_sides, score_map

__all__ = ["METHODS", "Predictions", "ensemble", "predict", "scaled_sides", "score_map"]
