"""What every experiment shares: its typed parameters, its claims and the ``results.json`` it writes.

A notebook's ``parameters`` cell assigns every field of its experiment's ``Params``; the next cell
calls ``Params.from_namespace(globals())``, so the notebook, the runner and the tests all validate the
same way (papermill itself only warns about unknown names).

The one experiment shape: a module defines ``measure(params) -> Measured`` (its DataFrames and where the
data came from) and ``claims(params, measured) -> list[Claim]``; ``run_experiment`` times both, writes
each DataFrame as ``<name>.csv`` and ``results.json`` into the output folder, and hands the notebook an
``Outcome`` (``.results``, ``.tables``, and each table as an attribute). Claims are built by
``resnetlib.claims`` (``number_claim`` from the paper's registry, ``statement_claim`` from a measured
effect); only ``resnetlib.claims.verdicts`` decides a verdict, and ``run_experiment`` adds what the budget
study says (``claims.emergence.with_budget_evidence``).
"""

from __future__ import annotations

import ast
import json
import platform
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch
from pydantic import Field

from ..claims import Claim
from .cost import runs_cost
from ..claims.emergence import with_budget_evidence
from ..config import StrictModel, validate
from ..paths import REPO_ROOT, default_interactive_dir, default_runs_dir
from ..report.tables import params_table


class ExperimentParams(StrictModel):
    """Fields common to every experiment notebook."""

    profile: str = Field("smoke", description="smoke, cpu, paper, or a name of your own")
    output_dir: str = Field("", description="where results.json and figures go; empty: reports/interactive/<experiment>")
    runs_dir: str = Field("", description="cache of trained runs, keyed by configuration; empty: $RESNETLIB_RUNS_DIR "
                          "or <repo>/runs")
    data_root: str = Field("", description="folder holding the data sets; empty: the default search path")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")
    force: bool = Field(False, description="retrain even if a cached run with this configuration exists")

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]):
        """Validate the notebook's parameter variables into this model.

        A name given as a parameter that is not a field (``papermill -p depthz 20``: papermill itself only
        warns) is passed on too, so that validation fails naming it and the closest field.
        """
        names = set(cls.model_fields) | _parameter_names(namespace)
        data = {k: namespace[k] for k in names if k in namespace}
        return validate(cls, data, source=f"{cls.__module__.rsplit('.', 1)[-1]} parameters")

    def experiment_name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]

    def out_path(self) -> Path:
        path = Path(self.output_dir) if self.output_dir else default_interactive_dir() / self.experiment_name()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def runs_path(self) -> Path:
        return Path(self.runs_dir) if self.runs_dir else default_runs_dir()

    def table(self) -> pd.DataFrame:
        """The effective parameters, one row per setting (shown in the rendered report; folders inside the
        repository relative to it, as in results.json)."""
        return params_table(portable_paths(self.model_dump()))

    @classmethod
    def parameters_cell(cls) -> str:
        """The notebook's ``parameters`` cell: one assignment per field, the smoke-scale defaults.

        The one place the cell is spelled; ``tests/test_notebooks_stored.py`` checks every notebook
        against it and ``write_parameters_cell`` rewrites a notebook's cell from it.
        """
        defaults = cls.model_validate({}).model_dump()
        lines = ["# Parameters (papermill overrides these; the defaults are the smoke scale)"]
        for name, info in cls.model_fields.items():
            lines.append(_assignment(name, defaults[name], info.description))
        return "\n".join(lines)


#: What IPython puts into a notebook's namespace besides the user's variables.
IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def _parameter_names(namespace: Mapping[str, Any]) -> set[str]:
    """Names the notebook's parameter cells assign.

    In a kernel, IPython's input history (``In``) holds every executed cell: the names assigned in those
    that start with ``# Parameters`` (the tagged cell and the one papermill injects), so variables of
    later cells in an interactive session are not mistaken for parameters. Elsewhere, every variable that
    is not IPython's own, a module, a function, a class or a ``_`` name.
    """
    history = namespace.get("In")
    if isinstance(history, list):
        cells = [c for c in history if isinstance(c, str) and c.lstrip().startswith("# Parameters")]
        return {name for cell in cells for name in _assigned_names(cell)}
    return {
        k for k, v in namespace.items()
        if not k.startswith("_") and k not in IPYTHON_NAMES
        and not isinstance(v, types.ModuleType | types.FunctionType | types.BuiltinFunctionType | type)
    }


def _assigned_names(source: str) -> set[str]:
    """Top-level ``name = ...`` targets of a cell (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    assigns = [node for node in tree.body if isinstance(node, ast.Assign)]
    return {t.id for node in assigns for t in node.targets if isinstance(t, ast.Name)}


def _literal(value: Any) -> str:
    """``value`` as a Python literal (double-quoted strings; tuples as lists, as YAML gives them)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _assignment(name: str, value: Any, description: str | None) -> str:
    """``name = value  # description``; a long mapping is written one key per line."""
    # papermill reads "a = b" inside a comment as an assignment and drops the line: write "a: b"
    comment = f"  # {description.replace(' = ', ': ').replace('=', ':')}" if description else ""
    text = f"{name} = {_literal(value)}"
    if isinstance(value, Mapping) and value and len(text) + len(comment) > 110:
        items = "".join(f"    {_literal(k)}: {_literal(v)},\n" for k, v in value.items())
        return f"{name} = {{{comment}\n{items}}}"
    return text + comment


def write_parameters_cell(notebook: str | Path, params_model: type[ExperimentParams]) -> bool:
    """Rewrite ``notebook``'s cell tagged ``parameters`` from ``params_model``; True when it changed."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    source = params_model.parameters_cell()
    if cell.source == source:
        return False
    cell.source = source
    nbformat.write(nb, notebook)
    return True


#: Parameters that name a folder on the machine that ran (``results.json`` records them relative to the
#: checkout when inside it, so a committed result does not carry one machine's absolute paths).
PATH_PARAMETERS = ("output_dir", "runs_dir", "data_root", "committed")


def portable_paths(params: dict[str, Any], root: Path = REPO_ROOT) -> dict[str, Any]:
    """``params`` with each folder parameter inside ``root`` made relative to it (others as given)."""
    out = dict(params)
    for key in PATH_PARAMETERS:
        value = out.get(key)
        if isinstance(value, str) and value and Path(value).is_absolute():
            try:
                out[key] = str(Path(value).resolve().relative_to(root.resolve()))
            except ValueError:
                pass
    return out


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
        "params": portable_paths(params.model_dump()),
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
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


# ---------------------------------------------------------------------------------------- experiment shape
@dataclass
class Measured:
    """What an experiment measured: its tables (each written as ``<name>.csv``) and where the data came from.

    ``extra`` goes into results.json beside the standard keys; ``scratch`` holds what the claims need but
    nobody else sees (e.g. a table that is not written).
    """

    tables: dict[str, pd.DataFrame]
    dataset: str
    data_source: str
    scale: str
    seeds: list[int]
    extra: dict[str, Any] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome(Mapping):
    """What ``run`` hands the notebook: ``results`` (the results.json dict) and ``tables`` (its DataFrames).

    It reads like the results dict (``outcome["claims"]``) and each table is an attribute
    (``outcome.curves``), so a notebook never re-reads the CSV files.
    """

    results: dict[str, Any]
    tables: dict[str, pd.DataFrame]

    def __getitem__(self, key: str) -> Any:
        return self.results[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(f"no table {name!r}; tables: {sorted(tables)}")


P = TypeVar("P", bound=ExperimentParams)


def run_experiment(
    params: P, measure: Callable[[P], Measured], claims: Callable[[P, Measured], list[Claim]]
) -> Outcome:
    """Time ``measure -> claims``, write ``<table>.csv`` and ``results.json`` into ``params.out_path()``."""
    start = time.perf_counter()
    measured = measure(params)
    out = params.out_path()
    for name, table in measured.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    training = runs_cost([*measured.tables.values(), *measured.scratch.values()])
    results = write_results(
        params, dataset=measured.dataset, data_source=measured.data_source, scale=measured.scale,
        seeds=measured.seeds, claims=with_budget_evidence(claims(params, measured), measured.dataset),
        wall_seconds=time.perf_counter() - start,
        extra={**measured.extra, **({"training_runs": training} if training else {})},
    )
    return Outcome(results, measured.tables)
