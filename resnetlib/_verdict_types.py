"""Verdict names, shared by the experiments' results and the index page."""

from typing import Final, Literal

Verdict = Literal["reproduced", "not reproduced", "not measurable at this scale"]
REPRODUCED: Final = "reproduced"
NOT_REPRODUCED: Final = "not reproduced"
NOT_MEASURABLE: Final = "not measurable at this scale"
