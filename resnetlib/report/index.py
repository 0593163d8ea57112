"""The index page of a reproduction run: ``reports/<profile>/index.html`` and ``index.json``.

One section per experiment (its data set, scale, seeds and params file stated once), with one row per
claim (a number or statement of the paper, with its table or figure), read from the ``results.json``
each notebook wrote into ``reports/<profile>/<name>/``; never from the notebooks' text. A notebook that
failed gets its error and the path of the executed notebook, and none of its numbers (it did not run to
the end, so its assert cells did not vouch for them).

The page is the jinja2 template ``templates/index.html.j2`` (autoescaped); numbers are formatted by
:mod:`resnetlib.report.tables`; the header's environment (git state, device, CPU) is handed in by the runner
(``resnetlib.reproduce.index.collect_environment``), so this module reads no training code.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..claims.family import holm_verdicts
from ..claims.kinds import claim_record, effect_text, headline, kind_counts, statement_records
from ..claims.rules import FAMILY_ALPHA, REPLICATION_BUDGET_FACTOR
from ..claims.verdicts import CONTRADICTED, INCONCLUSIVE, NOT_MEASURABLE, NOT_REPRODUCED, REPRODUCED
from .render import write_atomic
from .tables import DASH, fmt_claim_value, fmt_seconds

__all__ = ["FAILED", "LEGEND", "NO_RESULTS", "VERDICT_ORDER", "build_index"]

FAILED = "failed"
NO_RESULTS = "no results"
VERDICT_ORDER = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_REPRODUCED, NOT_MEASURABLE)
#: The forest plot of the statements, written beside index.html.
FOREST_PNG = "forest.png"
#: What every verdict's scope means, and the rules a reader must know to read a verdict below the paper's
#: scale (stated on the page, decided in resnetlib.claims).
RULES = (
    "Every verdict below the paper's scale holds at this budget only (its scope); only numbers and "
    "statements measured with the paper's data and protocol are judged at the paper's scale.",
    "A claim about which net ends better (deeper ResNets, bottleneck nets) is contradicted only where the "
    f"budget study replicates the contradiction at a budget at least {REPLICATION_BUDGET_FACTOR:g}x larger "
    "without the effect moving toward the paper's direction by more than its interval; otherwise it is not "
    "measurable at this budget, and the reason gives the effect against budget.",
    "Multiple comparisons: the Holm column adjusts the p-values of all statements judged in this run "
    f"(family-wise error rate {FAMILY_ALPHA:g}); a decided statement whose adjusted p is not below it reads "
    "inconclusive there.",
)

LEGEND = {
    REPRODUCED: "measured at the paper's scale and within the stated tolerance of the paper's number "
    "(either side), or the paper's statement holds with an effect larger than the stated margin.",
    CONTRADICTED: "a statement whose 95% interval over the seeds lies below zero and whose mean is below "
    "minus the margin: the opposite of the paper's claim holds at this budget. A claim about which net ends "
    f"better is contradicted only where a budget >= {REPLICATION_BUDGET_FACTOR:g}x larger replicates it "
    "(else not measurable at this budget).",
    INCONCLUSIVE: "a statement whose interval does not decide it (it straddles zero, the effect is below "
    "the margin, or too few seeds); the reason says about how many seeds would.",
    NOT_REPRODUCED: "a paper number the measurement was able to show and did not: worse than the paper's "
    "beyond the tolerance.",
    NOT_MEASURABLE: "this run's data set or scale cannot test the claim (a paper number at reduced scale, a "
    "net or detector that did not train, a budget too small to say which net ends better); the measured "
    "value is shown but not compared.",
    FAILED: "the notebook raised an error; its executed copy is linked.",
}
_CSS_CLASS = {
    REPRODUCED: "v-reproduced",
    CONTRADICTED: "v-contradicted",
    INCONCLUSIVE: "v-inconclusive",
    NOT_REPRODUCED: "v-not-reproduced",
    NOT_MEASURABLE: "v-not-measurable",
    FAILED: "v-failed",
    NO_RESULTS: "v-no-results",
}


def _commit_text(env: Mapping[str, Any]) -> str:
    commit, dirty = str(env.get("git_commit", "unknown")), env.get("git_dirty")
    if dirty is None:
        return f"{commit} (dirty: unknown)"
    return commit + (" (dirty: uncommitted changes)" if dirty else "")


# --------------------------------------------------------------------------------------------- helpers
def _as_dict(outcome: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(outcome) and not isinstance(outcome, type):
        return dataclasses.asdict(outcome)
    if isinstance(outcome, Mapping):
        return dict(outcome)
    raise TypeError(f"expected an Outcome or a mapping, got {type(outcome).__name__}")


def _href(target: str | None, base: Path) -> str | None:
    """A relative, URL-quoted link from the index's folder to ``target`` (None stays None)."""
    if not target:
        return None
    try:
        rel = os.path.relpath(Path(target), base)
    except ValueError:  # other drive (Windows)
        rel = str(target)
    return quote(Path(rel).as_posix())


def _read_results(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    if not path.is_file():
        return None, f"the notebook finished but wrote no {path}"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{path} is not readable JSON: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get("claims", []), list):
        return None, f"{path}: expected an object with a 'claims' list"
    return data, None


def _error_text(o: Mapping[str, Any]) -> str:
    where = ""
    if o.get("cell_index") is not None:
        where = f" at cell {o['cell_index']}"
        if o.get("execution_count") is not None:
            where += f" (In [{o['execution_count']}])"
    return f"{o.get('ename') or 'Error'}: {o.get('evalue') or ''}{where}".strip()


# --------------------------------------------------------------------------------------------- sections
def _section(o: Mapping[str, Any], profile_dir: Path) -> dict[str, Any]:
    """What every experiment's section shows whatever happened: name, links, params file, notes."""
    when = str(o.get("started") or "")[:16].replace("T", " ")
    return {
        "name": o["name"],
        "href": _href(o.get("html"), profile_dir),
        "params_file": o.get("params_file") or "",
        "earlier": f"earlier run, {when}" if o.get("carried_over") else None,
        "render_error": o.get("render_error"),
        "wall": fmt_seconds(o.get("wall_seconds")),
        "facts": [],
        "rows": [],
        "records": [],
        "problem": None,
    }


def _failed(o: Mapping[str, Any], section: dict[str, Any], entry: dict[str, Any]) -> None:
    notes = [("executed notebook", o.get("notebook")), ("kernel log", o.get("log")),
             ("previous successful output kept", o.get("previous_kept"))]
    section.update(verdict=FAILED, problem={"error": _error_text(o), "notes": [n for n in notes if n[1]]})
    entry.update(claims=[], verdict=FAILED)


def _no_results(problem: str, section: dict[str, Any], entry: dict[str, Any]) -> None:
    section.update(verdict=NO_RESULTS, problem={"error": problem, "notes": []})
    entry.update(claims=[], verdict=NO_RESULTS, problem=problem)


def _facts(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The experiment's data set, source, scale and seeds: stated once above its claims."""
    seeds = data.get("seeds")
    seeds_text = ", ".join(map(str, seeds)) if isinstance(seeds, list) and seeds else None
    facts = [("data", data.get("dataset") or DASH), ("from", data.get("data_source")),
             ("scale", data.get("scale")), ("seeds", seeds_text)]
    return [(k, str(v)) for k, v in facts if v and str(v).strip() not in ("-", DASH) or k == "data"]


def _value_cell(value: Any, what: str) -> dict[str, Any]:
    """A number (right-aligned, never wrapped) or a text (wrapped) in the claim's unit."""
    return {"text": fmt_claim_value(value, what), "num": not isinstance(value, str)}


def _claim_row(claim: Mapping[str, Any]) -> dict[str, Any]:
    """A row of an experiment's table; ``claim`` is a record of :func:`~resnetlib.claims.kinds.claim_record`."""
    what = str(claim.get("what") or claim.get("id") or "")
    return {
        "ref": claim.get("ref") or DASH,
        "kind": claim.get("kind") or DASH,
        "what": what,
        "effect": effect_text(claim),
        "ours": _value_cell(claim.get("ours"), what),
        "paper": _value_cell(claim.get("paper"), what),
        "verdict": str(claim.get("verdict") or NOT_MEASURABLE),
        "scope": claim.get("scope") or "",
        "holm": claim.get("verdict_holm"),
        "p_holm": claim.get("p_holm"),
        "reason": claim.get("reason") or "",
    }


def _with_results(data: dict[str, Any], path: Path, section: dict[str, Any], entry: dict[str, Any]) -> None:
    claims = [c for c in data.get("claims", []) if isinstance(c, Mapping)]
    section["records"] = [claim_record(c, section["name"]) for c in claims]
    rows = [_claim_row(r) for r in section["records"]]
    facts = _facts(data)
    if not rows and data.get("no_claims"):  # a study that states no claims of its own says why (not counted)
        facts.append(("claims", str(data["no_claims"])))
    elif not rows:
        rows = [{**_claim_row({"ref": DASH, "what": "(no claims)", "ours": None, "paper": None}),
                 "verdict": NO_RESULTS, "reason": f"{path} lists no claims"}]
    section.update(verdict=None, facts=facts, rows=rows)
    entry.update(claims=claims, dataset=data.get("dataset"), data_source=data.get("data_source"),
                 scale=data.get("scale"), seeds=data.get("seeds"), results_wall_seconds=data.get("wall_seconds"),
                 training_runs=data.get("training_runs") or [])


def _fill(o: dict[str, Any], profile_dir: Path, section: dict[str, Any], entry: dict[str, Any]) -> None:
    if o.get("status") != "ok":
        return _failed(o, section, entry)
    results_path = Path(o["results"]) if o.get("results") else profile_dir / o["name"] / "results.json"
    entry["results"] = str(results_path)
    data, problem = _read_results(results_path)
    if data is None:
        return _no_results(problem or "", section, entry)
    return _with_results(data, results_path, section, entry)


def _section_and_entry(o: dict[str, Any], profile_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """One experiment's section of the page, and its record in index.json."""
    section, entry = _section(o, profile_dir), dict(o)
    _fill(o, profile_dir, section, entry)
    section["tally"] = Counter(_verdicts_of(section))
    return section, entry


def _with_family(sections: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Holm over every statement of the run (``claims.family``): each record and row gets ``p_holm`` and
    ``verdict_holm``; returns the family's size and how many decided statements survive it."""
    records = [r for s in sections for r in s["records"]]
    adjusted, size = holm_verdicts(records)
    it = iter(adjusted)
    for s in sections:
        s["records"] = [next(it) for _ in s["records"]]
        if s["verdict"] is None and s["records"]:
            s["rows"] = [_claim_row(r) for r in s["records"]]
    decided = [r for r in adjusted if r.get("verdict_holm") is not None and r["verdict"] in (REPRODUCED, CONTRADICTED)]
    return {"statements_judged": size, "decided": len(decided),
            "decided_after_holm": sum(r["verdict_holm"] == r["verdict"] for r in decided), "alpha": FAMILY_ALPHA}


# --------------------------------------------------------------------------------------------- summary
def _verdicts_of(section: Mapping[str, Any]) -> list[str]:
    return [section["verdict"]] if section["verdict"] else [r["verdict"] for r in section["rows"]]


def _counts(sections: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {v: 0 for v in (*VERDICT_ORDER, FAILED, NO_RESULTS)}
    for section in sections:
        for verdict in _verdicts_of(section):
            counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def training_cost(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The profile's training cost (issue 20): core-hours (thread-hours, or GPU-hours) of the distinct runs
    the experiments' results name, each run counted once however many notebooks used it (Fig. 7 reuses the
    nets of Fig. 6); the CPU hours the run queue measured, for the runs it trained; and the experiments that
    name no run (they train outside the run cache, or nothing)."""
    runs: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        for run in entry.get("training_runs") or []:
            runs.setdefault(str(run.get("run")), run)
    measured = [r for r in runs.values() if r.get("cpu_seconds") is not None]
    kernels = [e for e in entries if e.get("cpu_seconds") is not None and not e.get("carried_over")]
    return {
        "runs": len(runs),
        "core_hours": round(sum(float(r.get("thread_seconds") or 0.0) for r in runs.values()) / 3600, 3),
        "cpu_hours_measured": round(sum(float(r["cpu_seconds"]) for r in measured) / 3600, 3),
        "runs_with_cpu_time": len(measured),
        "experiments_without_runs": [e["name"] for e in entries if not e.get("training_runs")],
        "notebook_cpu_hours": round(sum(float(e["cpu_seconds"]) for e in kernels) / 3600, 3),
        "notebooks_with_cpu_time": len(kernels),
    }


def _cost_text(cost: Mapping[str, Any]) -> str:
    text = (f"{cost['core_hours']:.2f} core-hours of training ({cost['runs']} runs, thread-seconds: training "
            "seconds x threads)")
    if cost["runs_with_cpu_time"]:
        text += f"; CPU time measured for {cost['runs_with_cpu_time']} of them: {cost['cpu_hours_measured']:.2f} h"
    if cost["experiments_without_runs"]:
        text += f"; not counted (no run-cache runs named): {', '.join(cost['experiments_without_runs'])}"
    if cost.get("notebooks_with_cpu_time"):
        text += (f"; the notebooks' kernels used {cost['notebook_cpu_hours']:.2f} CPU-hours more (training inside "
                 "a notebook, testing, analysis)")
    return text


def _meta(profile: str, env: Mapping[str, Any], generated: datetime, items: Sequence[Mapping],
          queue_seconds: float = 0.0, cost: Mapping[str, Any] | None = None) -> list:
    n_failed = sum(1 for o in items if o.get("status") != "ok")
    notebooks = f"{len(items)} notebooks {fmt_seconds(_total_wall(items))}, {n_failed} failed"
    queue = f"run queue {fmt_seconds(queue_seconds)} + " if queue_seconds else ""
    return [
        ("profile", profile),
        ("date", generated.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
        ("git commit", _commit_text(env)),
        ("torch", str(env.get("torch", "unknown"))),
        ("device", str(env.get("device", "unknown"))),
        ("CPU", f"{env.get('cpu', 'unknown')}; amp: auto trains in {env.get('cpu_amp', 'unknown')} on it"),
        ("total wall time", f"{fmt_seconds(_total_wall(items) + queue_seconds)} ({queue}{notebooks})"),
        *([("training cost", _cost_text(cost))] if cost else []),
    ]


def _override_lines(overrides: Mapping[str, Sequence[str]]) -> list[str]:
    """``--set`` items as the header shows them: ``KEY=VALUE (experiments it was applied to)``."""
    return [f"{item} ({', '.join(names)})" for item, names in overrides.items()]


def _total_wall(items: Sequence[Mapping[str, Any]]) -> float:
    return sum(float(o.get("wall_seconds") or 0.0) for o in items if not o.get("carried_over"))


def _render_page(**context: Any) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("resnetlib.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("index.html.j2").render(css=_CSS_CLASS, legend=LEGEND, **context)


# --------------------------------------------------------------------------------------------- forest plot
def _forest_label(record: Mapping[str, Any], width: int = 64) -> str:
    """``ref: what`` without the unit suffix, shortened to ``width`` characters."""
    what = str(record.get("what") or record.get("id") or "").replace(" (percentage points)", "")
    label = f"{record.get('ref') or DASH}: {what}"
    return label if len(label) <= width else label[: width - 1] + "…"


def _write_forest(records: Sequence[Mapping[str, Any]], profile_dir: Path) -> str | None:
    """Draw the statements' forest plot into ``profile_dir/forest.png``; its file name, or None (and no
    stale file) when the run has no statements."""
    path = profile_dir / FOREST_PNG
    statements = statement_records(records)
    if not statements:
        path.unlink(missing_ok=True)
        return None
    import matplotlib.pyplot as plt
    import pandas as pd

    from .figures import forest_plot

    columns = ["verdict", "effect", "ci_low", "ci_high", "margin", "n_seeds"]
    table = pd.DataFrame([{"label": _forest_label(r), **{c: r.get(c) for c in columns}} for r in statements])
    table[columns[1:]] = table[columns[1:]].astype(float)
    fig = forest_plot(table)
    tmp = path.with_name(f".{FOREST_PNG}")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return FOREST_PNG


# --------------------------------------------------------------------------------------------- entry point
def _resolve_profile(items: Sequence[Mapping[str, Any]], profile: str | None) -> str:
    if profile is not None:
        return profile
    profiles = {o.get("profile") for o in items if o.get("profile")}
    if len(profiles) != 1:
        raise ValueError(f"build_index needs one profile; outcomes have {sorted(profiles) or 'none'}")
    return profiles.pop()


def build_index(
    reports_dir: Path,
    outcomes: Sequence[Any],
    *,
    profile: str | None = None,
    environment: Mapping[str, Any],
    generated: datetime | None = None,
    queue_seconds: float = 0.0,
    overrides: Mapping[str, Sequence[str]] | None = None,
    not_run: Sequence[Mapping[str, str]] = (),
) -> Path:
    """Write ``reports_dir/<profile>/index.html`` and ``index.json`` for ``outcomes``; returns the HTML path.

    ``reports_dir`` is the root reports folder (``reports/``); ``outcomes`` are the runner's
    ``Outcome`` objects (or their dicts), in the order their sections should appear. ``profile`` defaults
    to the outcomes' profile; ``environment`` is the header's (``reproduce.index.collect_environment``). ``queue_seconds``: the time
    the run queue (``reproduce --jobs N``) trained before the notebooks ran, counted in the total.
    ``overrides``: ``{--set item: [experiments it was applied to]}``, shown in the header (the params files
    alone do not say what ran). ``not_run``: ``{"what", "why"}`` of each experiment or claim the profile
    leaves out to keep its budget (``reproduce.profile.not_run_in``), listed with its reason.
    """
    items = [_as_dict(o) for o in outcomes]
    profile = _resolve_profile(items, profile)
    profile_dir = Path(reports_dir) / profile
    env = dict(environment)
    generated = generated or datetime.now().astimezone()
    pairs = [_section_and_entry(o, profile_dir) for o in items]
    sections, entries = [s for s, _ in pairs], [e for _, e in pairs]
    family = _with_family(sections)
    counts = _counts(sections)
    records = [r for s in sections for r in s["records"]]
    by_kind = kind_counts(records)
    summary = {
        "profile": profile,
        "generated": generated.isoformat(timespec="seconds"),
        "environment": env,
        "total_wall_seconds": round(_total_wall(items) + queue_seconds, 1),
        "run_queue_seconds": round(queue_seconds, 1),
        "training": training_cost(entries),
        "overrides": {item: list(names) for item, names in (overrides or {}).items()},
        "counts": counts,
        "counts_by_kind": by_kind,
        "headline": dict(headline(by_kind)),
        "family": family,
        "failed_notebooks": [o["name"] for o in items if o.get("status") != "ok"],
        "not_run": [dict(n) for n in not_run],
        "experiments": entries,
        "claims": records,
    }
    profile_dir.mkdir(parents=True, exist_ok=True)
    summary["forest"] = _write_forest(records, profile_dir)
    page = _render_page(profile=profile, meta=_meta(profile, env, generated, items, queue_seconds,
                                                                summary["training"]), counts=counts,
                        sections=sections, verdict_order=VERDICT_ORDER, headline=headline(by_kind),
                        forest=summary["forest"], family=family, rules=RULES,
                        overrides=_override_lines(summary["overrides"]), not_run=summary["not_run"])
    write_atomic(profile_dir / "index.json", json.dumps(summary, indent=2, default=str))
    return write_atomic(profile_dir / "index.html", page)
