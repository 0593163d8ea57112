"""The rules that turn a measurement into a verdict. Nothing else in resnetlib decides a verdict.

Two kinds of claim:
- a paper *number* (``compare_number``): only comparable when the run used the paper's data set and
  protocol; at any smaller scale the verdict is "not measurable at this scale", whatever the number.
  Architecture facts (parameters, FLOPs) are exact at every scale and are compared two-sided.
- a paper *statement* (``judge_statement``): a qualitative claim such as "the 56-layer plain net has
  higher training error than the 20-layer one". It is judged at any scale that is large enough for the
  effect to show (the experiment says whether it is) and needs the effect to exceed a margin, so noise
  of a fraction of a percent does not count as reproduction.
"""

from __future__ import annotations

from typing import Final, Literal

Verdict = Literal["reproduced", "not reproduced", "not measurable at this scale"]
REPRODUCED: Final = "reproduced"
NOT_REPRODUCED: Final = "not reproduced"
NOT_MEASURABLE: Final = "not measurable at this scale"

__all__ = ["compare_number", "judge_statement", "REPRODUCED", "NOT_REPRODUCED", "NOT_MEASURABLE", "Verdict"]


def compare_number(
    ours: float | None,
    paper: float,
    *,
    at_paper_scale: bool,
    tolerance: float,
    lower_is_better: bool | None = True,
) -> tuple[Verdict, str]:
    """Verdict on a reported number (an error rate, an mAP, a FLOP count).

    At the paper's scale the number is reproduced when it is within ``tolerance`` (absolute, in the
    number's unit) of the paper's, or better than it; ``lower_is_better=None`` makes the test two-sided
    (for counts, where neither direction is better). Otherwise the comparison is not meaningful.
    """
    if ours is None:
        return NOT_MEASURABLE, "no measurement was made in this run"
    if not at_paper_scale:
        return NOT_MEASURABLE, (
            f"measured {ours:.4g} at reduced scale; the paper's {paper:.4g} needs the paper's data and protocol"
        )
    if lower_is_better is None:
        gap = abs(ours - paper)
        if gap <= tolerance:
            return REPRODUCED, f"{ours:.4g} vs paper {paper:.4g} (within {tolerance:.3g})"
        return NOT_REPRODUCED, f"{ours:.4g} vs paper {paper:.4g}: off by {gap:.3g} (tolerance {tolerance:.3g})"
    gap = (ours - paper) if lower_is_better else (paper - ours)
    if gap <= tolerance:
        return REPRODUCED, f"{ours:.4g} vs paper {paper:.4g} (within {tolerance:.3g} or better)"
    return NOT_REPRODUCED, f"{ours:.4g} vs paper {paper:.4g}: worse by {gap:.3g} (tolerance {tolerance:.3g})"


def judge_statement(
    effect: float | None,
    *,
    margin: float,
    measurable: bool,
    statement: str,
    why_not_measurable: str = "",
) -> tuple[Verdict, str]:
    """Verdict on a qualitative claim, given its measured ``effect`` (positive = the claim's direction).

    Reproduced when ``effect > margin``; not reproduced when it is not; not measurable when the
    experiment's scale cannot show the effect (``measurable=False``) or nothing was measured.
    """
    if effect is None or not measurable:
        return NOT_MEASURABLE, why_not_measurable or f"this scale cannot test: {statement}"
    if effect > margin:
        return REPRODUCED, f"{statement}: effect {effect:+.2f} > margin {margin:g}"
    return NOT_REPRODUCED, f"{statement}: effect {effect:+.2f} does not exceed margin {margin:g}"
