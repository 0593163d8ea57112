"""resnetlib: a notebook-first reproduction of "Deep Residual Learning for Image Recognition"
(He, Zhang, Ren, Sun, 2015)."""

__version__ = "0.1.0"
