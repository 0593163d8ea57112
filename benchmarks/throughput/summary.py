"""Per model: the median images/s of every method over the rounds, the paired ratios, the issue's targets."""

from __future__ import annotations

import statistics
from typing import Any

from .settings import Settings

TARGETS = {  # amp -> [(numerator, denominator, threshold)]; the targets on a 2-core CPU
    "off": [("ours", "bare", 0.95), ("ours", "conventional", 1.1)],
    "bf16": [("ours", "conventional_fp32", 1.5)],
}
DENOMINATORS = ("bare", "conventional", "conventional_fp32", "conventional_1w1t")

Runs = dict[str, list[dict[str, Any]]]


def summarise(s: Settings, runs: Runs, errors: dict[str, str], iters: int) -> dict[str, Any]:
    result: dict[str, Any] = {"iters": iters, "warmup": s.warmup, "rounds": s.rounds}
    result["methods"] = _medians(runs)
    ratios, ratio_of_medians = _ratios(runs, result["methods"])
    result["ratios"] = ratios  # median over rounds of the per-round (paired) ratios
    result["ratio_of_medians"] = ratio_of_medians
    result["targets"] = _targets(s, ratios)
    if errors:
        result["errors"] = errors
    return result


def _medians(runs: Runs) -> dict[str, Any]:
    methods = {}
    for m, rs in runs.items():
        if rs:
            vals = [x["img_s"] for x in rs]
            methods[m] = {"img_s": round(statistics.median(vals), 2), "img_s_rounds": vals, "runs": rs}
    return methods


def _ratios(runs: Runs, methods: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """ours / each denominator: the median of the per-round ratios, and the ratio of the medians."""
    ratios, ratio_of_medians = {}, {}
    per_round = {m: {x["round"]: x["img_s"] for x in rs} for m, rs in runs.items()}
    for den in DENOMINATORS:
        if den in methods and "ours" in methods:
            ours, other = per_round["ours"], per_round[den]
            paired = [ours[r] / other[r] for r in ours if r in other]
            ratios[f"ours_over_{den}"] = round(statistics.median(paired), 3)
            ratio_of_medians[f"ours_over_{den}"] = round(methods["ours"]["img_s"] / methods[den]["img_s"], 3)
    if "bare_cuda_graph" in methods:
        ratios["bare_cuda_graph_over_bare"] = round(
            methods["bare_cuda_graph"]["img_s"] / methods["bare"]["img_s"], 3)
    return ratios, ratio_of_medians


def _targets(s: Settings, ratios: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {"target": f"{num} >= {thr} x {den}", "measured": ratios.get(f"{num}_over_{den}"), "threshold": thr,
         "status": _status(ratios.get(f"{num}_over_{den}"), thr)}
        for num, den, thr in (TARGETS.get(s.amp, []) if s.device.type == "cpu" else [])
    ]


def _status(measured: float | None, threshold: float) -> str:
    if measured is None:
        return "n/a"
    return "PASS" if measured >= threshold else "MISS"
