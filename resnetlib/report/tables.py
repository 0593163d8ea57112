"""Tables shown in the notebooks: the paper's claims beside ours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def claims_frame(results: Mapping[str, Any]) -> pd.DataFrame:
    """One row per claim of a ``results.json``: reference, claim, ours, paper, verdict, reason."""
    columns = ["ref", "what", "ours", "paper", "verdict", "reason"]
    return pd.DataFrame(results["claims"], columns=[*columns, "id"])[columns]


def claims_table(results: Mapping[str, Any]):
    """``claims_frame`` styled for a notebook: whole texts (no truncation), left-aligned, no index."""
    return (
        claims_frame(results)
        .style.hide(axis="index")
        .format(precision=2, na_rep="-")
        .set_properties(**{"text-align": "left", "white-space": "normal"})
    )


def scale_note(results: Mapping[str, Any]) -> str:
    """The sentence printed under every table: where the numbers came from."""
    seeds = ", ".join(map(str, results.get("seeds", []))) or "-"
    return (
        f"Profile {results['profile']}; data: {results['dataset']} ({results['data_source']}); "
        f"scale: {results['scale']}; seeds: {seeds}; computed in {results['wall_seconds']:.0f} s by this run."
    )
