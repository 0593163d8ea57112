"""The rules that turn a measurement into a verdict. Nothing else in resnetlib decides a verdict.

Two kinds of claim:
- a paper *number* (``compare_number``): only comparable when the run used the paper's data set and
  protocol; at any smaller scale the verdict is "not measurable at this scale", whatever the number.
  Three outcomes: reproduced / not reproduced / not measurable at this scale. The test is two-sided (a
  number much better than the paper's is as suspect as one much worse: a bug that lowers an error
  passes no test), within ``tolerance`` widened by the standard error of the seeds' mean.
  Architecture facts (parameters, FLOPs) are exact at every scale.
- a paper *statement* (``judge_effects``): a qualitative claim such as "the 56-layer plain net has
  higher training error than the 20-layer one", judged from its per-seed effects (paired by seed) with a
  95% interval (Student t over seeds, n-1 degrees of freedom; with one seed, the binomial sampling error
  of the error rates). Four outcomes: reproduced (interval above zero, mean above the practical margin,
  >= ``MIN_SEEDS`` seeds), contradicted (interval below zero, mean below minus the margin, >=
  ``MIN_SEEDS`` seeds), inconclusive (otherwise, with the interval and how many seeds would resolve it),
  not measurable at this scale (a precondition, a ``Gate``, failed: wrong data, too short, a net or a
  detector that did not train).

Every threshold is in :mod:`resnetlib.claims.rules`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from scipy import stats

from .rules import (
    CONFIDENCE,
    DETECTOR_MIN_CLASS_FRACTION,
    DETECTOR_MIN_MAP50,
    MIN_SEEDS,
    TRAINED_FRACTION_OF_CHANCE,
)

Verdict = Literal["reproduced", "not reproduced", "contradicted", "inconclusive", "not measurable at this scale"]
REPRODUCED: Final = "reproduced"
NOT_REPRODUCED: Final = "not reproduced"
CONTRADICTED: Final = "contradicted"
INCONCLUSIVE: Final = "inconclusive"
NOT_MEASURABLE: Final = "not measurable at this scale"
#: The outcomes of a statement and of a number.
STATEMENT_VERDICTS: Final = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE)
NUMBER_VERDICTS: Final = (REPRODUCED, NOT_REPRODUCED, NOT_MEASURABLE)

__all__ = [
    "CONTRADICTED",
    "INCONCLUSIVE",
    "NOT_MEASURABLE",
    "NOT_REPRODUCED",
    "NUMBER_VERDICTS",
    "REPRODUCED",
    "STATEMENT_VERDICTS",
    "Gate",
    "Interval",
    "Judgement",
    "Verdict",
    "class_fraction",
    "compare_number",
    "detector_gate",
    "effect_interval",
    "judge_effects",
    "seeds_to_resolve",
    "trained_gate",
]


def compare_number(
    ours: float | None,
    paper: float,
    *,
    at_paper_scale: bool,
    tolerance: float,
    lower_is_better: bool | None = True,
    sem: float | None = None,
) -> tuple[Verdict, str]:
    """Verdict on a reported number (an error rate, an mAP, a FLOP count).

    At the paper's scale the number is reproduced when it is within ``tolerance`` (absolute, in the
    number's unit) of the paper's, on either side: a number much better than the paper's is not a
    reproduction of it. ``sem`` (the standard error of the mean of several seeds, their sd / sqrt(n))
    widens the tolerance to ``tolerance + sem``: the mean is uncertain by that much, the seeds' spread
    itself is not. ``lower_is_better`` only words the reason ("better"/"worse"; None: "off").
    Otherwise (reduced scale, no measurement) the comparison is not meaningful.
    """
    if sem is not None and math.isfinite(sem):
        tolerance = tolerance + sem
    if ours is None:
        return NOT_MEASURABLE, "no measurement was made in this run"
    if not at_paper_scale:
        return NOT_MEASURABLE, (
            f"measured {ours:.4g} at reduced scale; the paper's {paper:.4g} needs the paper's data and protocol"
        )
    gap = abs(ours - paper)
    if gap <= tolerance:
        return REPRODUCED, f"{ours:.4g} vs paper {paper:.4g} (within {tolerance:.3g})"
    return NOT_REPRODUCED, f"{ours:.4g} vs paper {paper:.4g}: {_direction(ours, paper, lower_is_better)} by " \
                           f"{gap:.3g} (tolerance {tolerance:.3g}, two-sided)"


def _direction(ours: float, paper: float, lower_is_better: bool | None) -> str:
    if lower_is_better is None:
        return "off"
    return "better" if (ours < paper) == lower_is_better else "worse"


# ----------------------------------------------------------------------------------------------------
# Statements judged from seeds and noise.


@dataclass(frozen=True)
class Interval:
    """Mean effect and its two-sided confidence interval; ``sd`` the spread it was drawn from (the seeds'
    sd, at least one seed's sampling error); ``method`` says where the width came from."""

    mean: float
    low: float
    high: float
    n: int
    method: str
    sd: float = math.nan

    @property
    def t_interval(self) -> bool:
        """Drawn from several seeds (Student t), not from one seed's sampling error alone."""
        return self.n >= 2 and math.isfinite(self.low)

    def p_value(self) -> float | None:
        """Two-sided p of "mean effect = 0" (t with n-1 df; one seed: normal); None without a spread."""
        if not (self.sd > 0 and math.isfinite(self.sd)):
            return None
        stat = abs(self.mean) / (self.sd / math.sqrt(self.n))
        tail = stats.t.sf(stat, df=self.n - 1) if self.n >= 2 else stats.norm.sf(stat)
        return float(2 * tail)


@dataclass(frozen=True)
class Gate:
    """A precondition of a comparison (a net trained, a detector detects); ``reason`` says why not."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    interval: Interval | None = None


def _t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))


def _z_quantile(confidence: float = CONFIDENCE) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def binomial_se(error_pct: float, n_images: int) -> float:
    """Standard error (points) of an error rate measured on ``n_images`` images."""
    p = min(max(error_pct / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1 - p) / max(n_images, 1))


def difference_se(a: tuple[float, int], b: tuple[float, int]) -> float:
    """Sampling standard error of the difference of two error rates, each given as (percent, images)."""
    return math.hypot(binomial_se(*a), binomial_se(*b))


def effect_interval(
    effects: Sequence[float], *, sampling_se: float | None = None, confidence: float = CONFIDENCE
) -> Interval:
    """Student-t interval over the per-seed effects (n-1 degrees of freedom); with one seed, the sampling
    error of that seed's measurement (normal approximation); with neither, an unbounded interval.

    Spread guard: seeds that agree exactly (an error rate counts whole images, so small test sets make
    identical effects likely) have no spread to estimate; their sd is then one seed's ``sampling_se``, or,
    with none known, the interval is unbounded: never a zero-width interval. (A nonzero sd is used as
    measured: the paired arms of a seed share their test images, so the independent-binomial
    ``sampling_se`` overstates a paired difference's noise and is no floor for it.)
    """
    values = [float(e) for e in effects]
    if not values:
        raise ValueError("effect_interval needs at least one effect")
    n, mean = len(values), statistics.fmean(values)
    floor = sampling_se if sampling_se and math.isfinite(sampling_se) else 0.0
    if n >= 2:
        sd = statistics.stdev(values)
        guard = ""
        if sd == 0 and floor:
            sd, guard = floor, f" ({n} identical effects: sd taken as one seed's sampling error)"
        if sd == 0:
            return Interval(mean, -math.inf, math.inf, n, f"{n} identical seeds, no sampling error: no interval", sd)
        half = _t_quantile(n, confidence) * sd / math.sqrt(n)
        return Interval(mean, mean - half, mean + half, n, f"Student t over {n} seeds{guard}", sd)
    if floor:
        half = _z_quantile(confidence) * floor
        return Interval(mean, mean - half, mean + half, 1, "binomial sampling error of 1 seed", floor)
    return Interval(mean, -math.inf, math.inf, 1, "1 seed, no error estimate")


def chance_error(num_classes: int) -> float:
    """Error rate (percent) of guessing uniformly among ``num_classes`` classes."""
    return 100.0 * (1 - 1 / num_classes)


def trained_gate(net: str, final_train_error: float, num_classes: int, *, diverged: bool = False) -> Gate:
    """Did ``net`` train? Final training error at most half of chance (45% for 10 classes), no divergence."""
    limit = TRAINED_FRACTION_OF_CHANCE * chance_error(num_classes)
    if diverged or not math.isfinite(final_train_error):
        return Gate(False, f"{net} diverged")
    if final_train_error > limit:
        return Gate(False, f"{net} did not train: final training error {final_train_error:.1f}% > {limit:.0f}% "
                           f"(half of chance, {num_classes} classes)")
    return Gate(True)


def detector_gate(name: str, map50: float, class_fraction: float) -> Gate:
    """Did detector ``name`` learn to detect? (Appendix A's detectors; Table 9's steps need both detectors
    of a step to pass.) COCO mAP@.5 (percent, mean over seeds) at least ``DETECTOR_MIN_MAP50``, and a
    classifier that is not constant: at least ``DETECTOR_MIN_CLASS_FRACTION`` of the classes with a nonzero
    AP@.5 (a detector that gives every box one class scores zero on all the others)."""
    if not map50 >= DETECTOR_MIN_MAP50:
        return Gate(False, f"{name} detects too little (mAP@.5 {map50:.1f} < {DETECTOR_MIN_MAP50:g})")
    if not class_fraction >= DETECTOR_MIN_CLASS_FRACTION:
        return Gate(False, f"{name} has not learnt to classify: {100 * class_fraction:.0f}% of the classes have a "
                           f"nonzero AP@.5 (< {100 * DETECTOR_MIN_CLASS_FRACTION:.0f}%)")
    return Gate(True)


def class_fraction(per_class_ap: Mapping[object, float]) -> float:
    """Fraction of the classes (those with ground truth: AP not NaN) that have a nonzero AP."""
    valid = [ap for ap in per_class_ap.values() if ap is not None and not math.isnan(ap)]
    return sum(ap > 0 for ap in valid) / len(valid) if valid else 0.0


def seeds_to_resolve(mean: float, sd: float, margin: float, confidence: float = CONFIDENCE,
                     most: int = 1000) -> int | None:
    """How many seeds make the t interval exclude zero at this mean effect and spread: the smallest n with
    ``t(n-1) * sd / sqrt(n) < |mean|`` (Student t with n-1 degrees of freedom, n searched, not a normal
    approximation). None when more seeds cannot decide: the mean lies within the margin of zero (the
    verdict needs it beyond the margin), the spread is zero, or more than ``most`` seeds would be needed."""
    if abs(mean) <= margin or not sd > 0:
        return None
    for n in range(2, most + 1):
        if _t_quantile(n, confidence) * sd / math.sqrt(n) < abs(mean):
            return n
    return None


def judge_effects(
    effects: Sequence[float],
    *,
    statement: str,
    margin: float,
    sampling_se: float | None = None,
    gates: Iterable[Gate] = (),
    min_seeds: int = MIN_SEEDS,
) -> Judgement:
    """Verdict on a statement from its per-seed effects (positive = the paper's direction; paired by seed
    where both arms share one).

    - not measurable at this scale: a precondition failed (a net did not train);
    - reproduced: the interval lies above zero, the mean exceeds ``margin`` and >= ``min_seeds`` seeds;
    - contradicted: the interval lies below zero, the mean is below ``-margin`` and >= ``min_seeds`` seeds
      (the opposite holds by as much as the paper's direction would need);
    - inconclusive: otherwise; the reason gives the interval and how many seeds would resolve it.
    """
    failed = [g.reason for g in gates if not g.ok]
    if failed:
        return Judgement(NOT_MEASURABLE, "; ".join(failed))
    ci = effect_interval(effects, sampling_se=sampling_se)
    text = f"{statement}: effect {ci.mean:+.2f} [{ci.low:+.2f}, {ci.high:+.2f}] ({ci.method}), margin {margin:g}"
    enough = ci.n >= min_seeds
    if enough and ci.low > 0 and ci.mean > margin:
        return Judgement(REPRODUCED, text, ci)
    if enough and ci.high < 0 and ci.mean < -margin:
        return Judgement(CONTRADICTED, text, ci)
    return Judgement(INCONCLUSIVE, f"{text}; {_why_inconclusive(ci, margin, min_seeds)}", ci)


def _why_inconclusive(ci: Interval, margin: float, min_seeds: int) -> str:
    if ci.n < min_seeds and (ci.low > 0 or ci.high < 0):
        return f"the interval excludes zero but {ci.n} seed(s) < {min_seeds} required"
    if ci.low > 0 or ci.high < 0:
        return f"the effect is real but within the practical margin {margin:g}"
    if not math.isfinite(ci.sd):
        return f"1 seed and no error estimate: at least {min_seeds} seeds are needed"
    if ci.sd == 0:
        return f"the seeds agree exactly and no sampling error is known: no interval (at least {min_seeds} seeds " \
               "with a spread are needed)"
    need = seeds_to_resolve(ci.mean, ci.sd, margin)
    if need is None:
        return "the mean effect lies within the margin of zero: more seeds would not resolve it"
    return f"about {max(need, min_seeds)} seeds would resolve it at this effect and spread (t, n-1 df)"
