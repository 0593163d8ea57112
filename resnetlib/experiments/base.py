"""What every experiment shares: its typed parameters and the ``results.json`` it writes.

A notebook's ``parameters`` cell assigns every field of its experiment's ``Params``; the next cell
calls ``Params.from_namespace(globals())``, so the notebook, the runner and the tests all validate the
same way (papermill itself only warns about unknown names).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field

from ..config import StrictModel, validate

REPO_ROOT = Path(__file__).resolve().parents[2]

from .._verdict_types import Verdict


class ExperimentParams(StrictModel):
    """Fields common to every experiment notebook."""

    profile: str = Field("smoke", description="smoke, cpu, paper, or a name of your own")
    output_dir: str = Field("", description="where results.json and figures go; '' = reports/interactive/<experiment>")
    runs_dir: str = Field("", description="cache of trained runs, keyed by configuration; '' = <repo>/runs")
    data_root: str = Field("", description="folder holding the data sets; '' = the default search path")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    force: bool = Field(False, description="retrain even if a cached run with this configuration exists")

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]):
        """Validate the notebook's parameter variables (those named like fields) into this model."""
        data = {k: namespace[k] for k in cls.model_fields if k in namespace}
        return validate(cls, data, source=f"{cls.__module__.rsplit('.', 1)[-1]} parameters")

    def experiment_name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]

    def out_path(self) -> Path:
        path = Path(self.output_dir) if self.output_dir else REPO_ROOT / "reports" / "interactive" / self.experiment_name()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def runs_path(self) -> Path:
        return Path(self.runs_dir) if self.runs_dir else REPO_ROOT / "runs"

    def table(self) -> "Any":
        """The effective parameters as a one-column DataFrame (shown in the rendered report)."""
        import pandas as pd

        return pd.DataFrame({"value": {k: str(v) for k, v in self.model_dump().items()}})


class Claim(BaseModel):
    """One row of the index: a number or statement of the paper beside what this run measured."""

    id: str
    ref: str
    what: str
    ours: float | str | None
    paper: float | str | None
    verdict: Verdict
    reason: str


def write_results(
    params: ExperimentParams,
    *,
    dataset: str,
    data_source: str,
    scale: str,
    seeds: list[int],
    claims: list[Claim],
    wall_seconds: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``results.json`` for the index page and the tests; returns what it wrote."""
    results = {
        "experiment": params.experiment_name(),
        "profile": params.profile,
        "dataset": dataset,
        "data_source": data_source,
        "scale": scale,
        "seeds": list(seeds),
        "wall_seconds": round(float(wall_seconds), 1),
        "claims": [c.model_dump() for c in claims],
        "params": params.model_dump(),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        **(dict(extra) if extra else {}),
    }
    path = params.out_path() / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str))
    tmp.replace(path)
    return results
