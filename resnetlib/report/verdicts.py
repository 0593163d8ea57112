"""The rules that turn a measurement into a verdict. Nothing else in resnetlib decides a verdict.

Two kinds of claim:
- a paper *number* (``compare_number``): only comparable when the run used the paper's data set and
  protocol; at any smaller scale the verdict is "not measurable at this scale", whatever the number.
  Three outcomes: reproduced / not reproduced / not measurable at this scale. With several seeds the
  tolerance widens to the seeds' spread (``max(tolerance, 2 * sd)``), so seed noise is not a miss.
  Architecture facts (parameters, FLOPs) are exact at every scale and are compared two-sided.
- a paper *statement* (``judge_effects``): a qualitative claim such as "the 56-layer plain net has
  higher training error than the 20-layer one", judged from its per-seed effects (paired by seed) with a
  95% interval (Student t over seeds; with one seed, the binomial sampling error of the error rates).
  Four outcomes: reproduced (interval above zero, mean above the practical margin, >= ``MIN_SEEDS``
  seeds), contradicted (interval below zero, >= ``MIN_SEEDS`` seeds), inconclusive (otherwise, with the
  interval and roughly how many seeds would resolve it), not measurable at this scale (a precondition,
  a ``Gate``, failed: wrong data, too short, a net that did not train, a curve still moving).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from scipy import stats

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
    "compare_number",
    "effect_interval",
    "flattened_gate",
    "judge_effects",
    "trained_gate",
]

#: With several seeds a number's tolerance is at least this many of the seeds' standard deviations.
SPREAD_TOLERANCE_SDS = 2.0


def compare_number(
    ours: float | None,
    paper: float,
    *,
    at_paper_scale: bool,
    tolerance: float,
    lower_is_better: bool | None = True,
    spread: float | None = None,
) -> tuple[Verdict, str]:
    """Verdict on a reported number (an error rate, an mAP, a FLOP count).

    At the paper's scale the number is reproduced when it is within ``tolerance`` (absolute, in the
    number's unit) of the paper's, or better than it; ``lower_is_better=None`` makes the test two-sided
    (for counts, where neither direction is better). Otherwise the comparison is not meaningful.
    ``spread`` (the seeds' standard deviation, where there are several) widens the tolerance to
    ``max(tolerance, SPREAD_TOLERANCE_SDS * spread)``.
    """
    if spread is not None and math.isfinite(spread):
        tolerance = max(tolerance, SPREAD_TOLERANCE_SDS * spread)
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


# ----------------------------------------------------------------------------------------------------
# Statements judged from seeds and noise (issue: verdicts a reviewer can trust).

#: A statement about trained nets needs this many seeds to be reproduced or contradicted.
MIN_SEEDS = 3
#: Two-sided confidence level of every interval in the report.
CONFIDENCE = 0.95
#: A net has trained when its final training error is at most this fraction of chance error.
TRAINED_FRACTION_OF_CHANCE = 0.5
#: "Flattened": the training error moved by at most this many points over the second half of the
#: last learning-rate phase.
FLAT_POINTS = 1.0


@dataclass(frozen=True)
class Interval:
    """Mean effect and its two-sided confidence interval; ``method`` says where the width came from."""

    mean: float
    low: float
    high: float
    n: int
    method: str


@dataclass(frozen=True)
class Gate:
    """A precondition of a comparison (a net trained, a curve flattened); ``reason`` says why not."""

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
    """Student-t interval over the per-seed effects; with one seed, the sampling error of that seed's
    measurement (normal approximation); with neither, an unbounded interval."""
    values = [float(e) for e in effects]
    if not values:
        raise ValueError("effect_interval needs at least one effect")
    n, mean = len(values), statistics.fmean(values)
    if n >= 2:
        half = _t_quantile(n, confidence) * statistics.stdev(values) / math.sqrt(n)
        return Interval(mean, mean - half, mean + half, n, f"Student t over {n} seeds")
    if sampling_se is not None:
        half = _z_quantile(confidence) * sampling_se
        return Interval(mean, mean - half, mean + half, 1, "binomial sampling error of 1 seed")
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


def flattened_gate(net: str, iterations: Sequence[int], train_errors: Sequence[float], last_milestone: int,
                   images_per_evaluation: int | None = None) -> Gate:
    """Has ``net``'s training curve flattened? Rule: over the second half of the last learning-rate
    phase (after the last milestone) the training error moved by at most ``FLAT_POINTS`` points, or by
    at most two standard errors of the difference of two evaluations when each averages only
    ``images_per_evaluation`` images (so sampling noise alone does not count as learning).
    Needed by claims about which net *ends* better; claims at an equal budget do not need it."""
    points = sorted(zip(iterations, train_errors))
    end = points[-1][0] if points else 0
    start = last_milestone + (end - last_milestone) / 2
    tail = [e for i, e in points if i >= start]
    if len(tail) < 2:
        return Gate(False, f"{net}: fewer than 2 evaluations in the second half of the last lr phase")
    moved, allowed = max(tail) - min(tail), FLAT_POINTS
    if images_per_evaluation:
        allowed = max(allowed, 2 * math.sqrt(2) * binomial_se(statistics.fmean(tail), images_per_evaluation))
    if moved > allowed:
        return Gate(False, f"{net} still learning: training error moved {moved:.1f} points over the second "
                           f"half of the last lr phase (flat means <= {allowed:.2g})")
    return Gate(True)


def seeds_to_resolve(interval: Interval, sd: float, margin: float, confidence: float = CONFIDENCE) -> int | None:
    """Roughly how many seeds make the interval exclude zero at this mean effect and spread; None when
    more seeds cannot decide (the mean lies between zero and the margin, or is zero)."""
    mean = interval.mean
    if mean == 0 or 0 < mean <= margin or sd <= 0:
        return None
    return max(MIN_SEEDS, math.ceil((_z_quantile(confidence) * sd / abs(mean)) ** 2) + 1)


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

    - not measurable at this scale: a precondition failed (a net did not train, a curve still moving);
    - reproduced: the interval lies above zero, the mean exceeds ``margin`` and >= ``min_seeds`` seeds;
    - contradicted: the interval lies below zero with >= ``min_seeds`` seeds;
    - inconclusive: otherwise; the reason gives the interval and roughly how many seeds would resolve it.
    """
    failed = [g.reason for g in gates if not g.ok]
    if failed:
        return Judgement(NOT_MEASURABLE, "; ".join(failed))
    ci = effect_interval(effects, sampling_se=sampling_se)
    text = f"{statement}: effect {ci.mean:+.2f} [{ci.low:+.2f}, {ci.high:+.2f}] ({ci.method}), margin {margin:g}"
    enough = ci.n >= min_seeds
    if enough and ci.low > 0 and ci.mean > margin:
        return Judgement(REPRODUCED, text, ci)
    if enough and ci.high < 0:
        return Judgement(CONTRADICTED, text, ci)
    return Judgement(INCONCLUSIVE, f"{text}; {_why_inconclusive(ci, effects, sampling_se, margin, min_seeds)}", ci)


def _why_inconclusive(ci: Interval, effects: Sequence[float], sampling_se: float | None, margin: float,
                      min_seeds: int) -> str:
    if ci.n < min_seeds and (ci.low > 0 or ci.high < 0):
        return f"the interval excludes zero but {ci.n} seed(s) < {min_seeds} required"
    if 0 < ci.mean <= margin and ci.low > 0:
        return f"the effect is real but below the practical margin {margin:g}"
    if len(effects) < 2 and not sampling_se:
        return f"1 seed and no error estimate: at least {min_seeds} seeds are needed"
    sd = statistics.stdev(effects) if len(effects) >= 2 else sampling_se
    need = seeds_to_resolve(ci, sd, margin)
    if need is None:
        return "the mean effect lies between zero and the margin: more seeds would not resolve it"
    return f"about {need} seeds would resolve it at this effect and spread"
