"""Analysis of networks: size and cost (Tables 1, 6), training memory (Sec. 4.2), layer responses (Fig. 7)."""

from .complexity import count_macs, count_params, count_weighted_layers
from .memory import activation_bytes
from .responses import layer_response_std

__all__ = ["count_params", "count_macs", "count_weighted_layers", "activation_bytes", "layer_response_std"]
