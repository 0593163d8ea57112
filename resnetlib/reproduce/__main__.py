"""``python -m resnetlib.reproduce``: the same as ``resnetlib reproduce``."""

import sys

from ..cli import main

sys.exit(main(["reproduce", *sys.argv[1:]]))
