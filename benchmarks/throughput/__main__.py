"""``python -m benchmarks.throughput``: the training-throughput benchmark (see the package docstring)."""

from .cli import main

main()
