"""Analysis of networks: size and cost (Tables 1 and 6) and layer responses (Fig. 7)."""

from .complexity import count_macs, count_params, count_weighted_layers
from .responses import layer_response_std

__all__ = ["count_params", "count_macs", "count_weighted_layers", "layer_response_std"]
