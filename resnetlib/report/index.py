"""The index page of a reproduction run: ``reports/<profile>/index.html`` and ``index.json``.

One row per claim (a number or statement of the paper, with its table or figure), read from the
``results.json`` each notebook wrote into ``reports/<profile>/<name>/``; never from the notebooks' text.
A notebook that failed gets one row marked "failed" with its error and the path of the executed
notebook, and none of its numbers (it did not run to the end, so its assert cells did not vouch for them).

The page is built from plain string templates; every piece of text is HTML-escaped.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._verdict_types import NOT_MEASURABLE, NOT_REPRODUCED, REPRODUCED

__all__ = ["build_index", "collect_environment", "git_info", "FAILED", "NO_RESULTS", "VERDICT_ORDER"]

REPO_ROOT = Path(__file__).resolve().parents[2]

FAILED = "failed"
NO_RESULTS = "no results"
VERDICT_ORDER = (REPRODUCED, NOT_REPRODUCED, NOT_MEASURABLE)

LEGEND = {
    REPRODUCED: "measured at the paper's scale and within the stated tolerance of the paper's number "
    "(or better), or the paper's statement holds with an effect larger than the stated margin.",
    NOT_REPRODUCED: "the measurement was able to show the claim and did not: the number is worse than the "
    "paper's beyond the tolerance, or the effect does not exceed the margin.",
    NOT_MEASURABLE: "this run's data set or scale cannot test the claim (e.g. a paper number at reduced "
    "scale); the measured value is shown but not compared.",
}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
table.meta td { padding: 1px 12px 1px 0; font-size: 0.92em; }
table.meta td:first-child { color: #666; }
table.claims { border-collapse: collapse; font-size: 0.88em; margin-top: 1em; }
table.claims th, table.claims td { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top;
  text-align: left; }
table.claims th { background: #f3f3f3; position: sticky; top: 0; }
table.claims td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.small { color: #666; font-size: 0.85em; }
.verdict { display: inline-block; padding: 1px 6px; border-radius: 3px; white-space: nowrap;
  font-weight: 600; }
.v-reproduced { background: #d8f0d8; color: #145214; }
.v-not-reproduced { background: #f8d7d3; color: #8a1c12; }
.v-not-measurable { background: #ececec; color: #555; }
.v-failed { background: #b3261e; color: #fff; }
.v-no-results { background: #fbe9b7; color: #6b4e00; }
tr.failed td { background: #fff3f2; }
ul.legend { font-size: 0.9em; padding-left: 1.2em; }
pre.err { white-space: pre-wrap; margin: 0; font-size: 0.95em; }
"""


# --------------------------------------------------------------------------------------------- environment
def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or "unknown", "dirty": bool or None}`` (read-only git calls, no index lock)."""
    git = shutil.which("git")
    if git is None:
        return {"commit": "unknown", "dirty": None}

    def call(*args: str) -> str | None:
        try:
            res = subprocess.run(
                [git, "--no-optional-locks", "-C", str(repo), *args],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout if res.returncode == 0 else None

    commit = call("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown", "dirty": None}
    status = call("status", "--porcelain")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def collect_environment(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """What the header shows: git commit and dirty flag, torch version, device, python, host."""
    env: dict[str, Any] = {"python": platform.python_version(), "host": platform.node()}
    env.update({f"git_{k}": v for k, v in git_info(repo).items()})
    try:
        import torch

        env["torch"] = torch.__version__
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            same = len(set(names)) == 1
            env["device"] = f"cuda: {len(names)} x {names[0]}" if same else "cuda: " + ", ".join(names)
        else:
            env["device"] = f"cpu ({os.cpu_count()} cores)"
    except Exception as exc:  # pragma: no cover - torch is a dependency
        env["torch"] = f"unavailable ({exc})"
        env["device"] = "unknown"
    return env


# --------------------------------------------------------------------------------------------- helpers
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _as_dict(outcome: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(outcome) and not isinstance(outcome, type):
        return dataclasses.asdict(outcome)
    if isinstance(outcome, Mapping):
        return dict(outcome)
    raise TypeError(f"expected an Outcome or a mapping, got {type(outcome).__name__}")


def _fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 100_000 else str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-2:
            return f"{value:.3g}"
        return f"{value:.2f}"
    return str(value)


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _verdict_badge(verdict: str) -> str:
    css = {
        REPRODUCED: "v-reproduced",
        NOT_REPRODUCED: "v-not-reproduced",
        NOT_MEASURABLE: "v-not-measurable",
        FAILED: "v-failed",
        NO_RESULTS: "v-no-results",
    }.get(verdict, "v-not-measurable")
    return f'<span class="verdict {css}">{_e(verdict)}</span>'


def _link(target: str | None, base: Path, text: str) -> str:
    if not target:
        return _e(text)
    try:
        rel = os.path.relpath(Path(target), base)
    except ValueError:  # other drive (Windows)
        rel = str(target)
    href = quote(Path(rel).as_posix())
    return f'<a href="{_e(href)}">{_e(text)}</a>'


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


# --------------------------------------------------------------------------------------------- rows
def _rows_for(o: dict[str, Any], profile_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Table rows of one outcome, and its entry for index.json."""
    name = o["name"]
    entry = dict(o)
    note = ""
    if o.get("carried_over"):
        note = f"earlier run, {str(o.get('started') or '')[:16].replace('T', ' ')}"
    notebook_cell = _link(o.get("html"), profile_dir, name)
    if o.get("render_error"):
        notebook_cell += f'<div class="small">HTML not rendered: {_e(o["render_error"])}</div>'
    if note:
        notebook_cell += f'<div class="small">{_e(note)}</div>'
    base = {
        "name": name,
        "notebook": notebook_cell,
        "params_file": _e(o.get("params_file") or ""),
    }
    if o.get("status") != "ok":
        reason = [f'<pre class="err">{_e(_error_text(o))}</pre>']
        reason.append(f'<div class="small">executed notebook: {_e(o.get("notebook"))}</div>')
        if o.get("log"):
            reason.append(f'<div class="small">kernel log: {_e(o["log"])}</div>')
        if o.get("previous_kept"):
            kept = _e(o["previous_kept"])
            reason.append(f'<div class="small">previous successful output kept: {kept}</div>')
        row = {**base, "ref": "—", "what": "notebook failed", "data": "—", "seeds": "—", "ours": "—",
               "paper": "—", "verdict": FAILED, "reason": "".join(reason), "failed": True}
        entry.update(claims=[], verdict=FAILED)
        return [row], entry

    results_path = Path(o["results"]) if o.get("results") else profile_dir / name / "results.json"
    data, problem = _read_results(results_path)
    entry["results"] = str(results_path)
    if data is None:
        row = {**base, "ref": "—", "what": "no results", "data": "—", "seeds": "—", "ours": "—",
               "paper": "—", "verdict": NO_RESULTS, "reason": _e(problem), "failed": True}
        entry.update(claims=[], verdict=NO_RESULTS, problem=problem)
        return [row], entry

    dataset = data.get("dataset") or "—"
    data_cell = f"{_e(dataset)}<div class=\"small\">{_e(data.get('scale') or '')}</div>"
    if data.get("data_source"):
        data_cell += f"<div class=\"small\">from {_e(data['data_source'])}</div>"
    seeds = data.get("seeds")
    seeds_cell = _e(", ".join(str(s) for s in seeds)) if isinstance(seeds, list) and seeds else "—"
    rows = []
    claims = [c for c in data.get("claims", []) if isinstance(c, Mapping)]
    for claim in claims:
        rows.append({
            **base,
            "ref": _e(claim.get("ref") or "—"),
            "what": _e(claim.get("what") or claim.get("id") or ""),
            "data": data_cell,
            "seeds": seeds_cell,
            "ours": _e(_fmt_value(claim.get("ours"))),
            "paper": _e(_fmt_value(claim.get("paper"))),
            "verdict": str(claim.get("verdict") or NOT_MEASURABLE),
            "reason": _e(claim.get("reason") or ""),
            "failed": False,
        })
    if not rows:
        rows.append({**base, "ref": "—", "what": "(no claims)", "data": data_cell, "seeds": seeds_cell,
                     "ours": "—", "paper": "—", "verdict": NO_RESULTS,
                     "reason": _e(f"{results_path} lists no claims"), "failed": False})
    entry.update(
        claims=claims,
        dataset=data.get("dataset"),
        data_source=data.get("data_source"),
        scale=data.get("scale"),
        seeds=seeds,
        results_wall_seconds=data.get("wall_seconds"),
    )
    return rows, entry


_COLUMNS = [
    ("ref", "Paper"),
    ("what", "Claim"),
    ("notebook", "Notebook"),
    ("params_file", "Params file"),
    ("data", "Data set and scale"),
    ("seeds", "Seed(s)"),
    ("ours", "Ours"),
    ("paper", "Paper value"),
    ("verdict", "Verdict"),
    ("reason", "Reason"),
]


def _html_page(profile: str, meta: list[tuple[str, str]], counts: dict[str, int], rows: list[dict]) -> str:
    meta_rows = "\n".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in meta)
    summary = ", ".join(f"{_verdict_badge(k)} {n}" for k, n in counts.items() if n or k in VERDICT_ORDER)
    legend = "\n".join(f"<li>{_verdict_badge(k)} {_e(v)}</li>" for k, v in LEGEND.items())
    legend += (f"\n<li>{_verdict_badge(FAILED)} the notebook raised an error; "
               "its executed copy is linked.</li>")
    head = "".join(f"<th>{_e(title)}</th>" for _, title in _COLUMNS)
    body = []
    for row in rows:
        cells = []
        for key, _ in _COLUMNS:
            value = _verdict_badge(row["verdict"]) if key == "verdict" else row[key]
            cls = ' class="num"' if key in ("ours", "paper") else ""
            cells.append(f"<td{cls}>{value}</td>")
        tr_cls = ' class="failed"' if row.get("failed") else ""
        body.append(f"<tr{tr_cls}>" + "".join(cells) + "</tr>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>resnetlib reproduction: profile {_e(profile)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Deep Residual Learning (He et al., 2015): reproduction, profile <code>{_e(profile)}</code></h1>
<table class="meta">
{meta_rows}
</table>
<p>Every number in the <em>Ours</em> column was computed by this run (rows marked "earlier run" come from
the last run of that notebook); the <em>Paper value</em> column is the paper's reported number
(<code>resnetlib.paper</code>). Verdicts are decided only by <code>resnetlib.report.verdicts</code>.</p>
<ul class="legend">
{legend}
</ul>
<p>Summary: {summary}</p>
<table class="claims">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
</body>
</html>
"""


# --------------------------------------------------------------------------------------------- entry point
def build_index(
    reports_dir: Path,
    outcomes: Sequence[Any],
    *,
    profile: str | None = None,
    environment: Mapping[str, Any] | None = None,
    generated: datetime | None = None,
) -> Path:
    """Write ``reports_dir/<profile>/index.html`` and ``index.json`` for ``outcomes``; returns the HTML path.

    ``reports_dir`` is the root reports folder (``reports/``); ``outcomes`` are the runner's
    ``Outcome`` objects (or their dicts), in the order their rows should appear. ``profile`` defaults to
    the outcomes' profile; ``environment`` to :func:`collect_environment`.
    """
    items = [_as_dict(o) for o in outcomes]
    profiles = {o.get("profile") for o in items if o.get("profile")}
    if profile is None:
        if len(profiles) != 1:
            raise ValueError(f"build_index needs one profile; outcomes have {sorted(profiles) or 'none'}")
        profile = profiles.pop()
    profile_dir = Path(reports_dir) / profile
    profile_dir.mkdir(parents=True, exist_ok=True)
    env = dict(environment) if environment is not None else collect_environment()
    generated = generated or datetime.now().astimezone()

    rows: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for o in items:
        r, entry = _rows_for(o, profile_dir)
        rows.extend(r)
        entries.append(entry)

    counts: dict[str, int] = {v: 0 for v in VERDICT_ORDER}
    counts[FAILED] = 0
    counts[NO_RESULTS] = 0
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    total_wall = sum(float(o.get("wall_seconds") or 0.0) for o in items if not o.get("carried_over"))

    commit = str(env.get("git_commit", "unknown"))
    dirty = env.get("git_dirty")
    if dirty is None:
        commit_text = commit + " (dirty: unknown)"
    else:
        commit_text = commit + (" (dirty: uncommitted changes)" if dirty else "")
    n_failed = sum(1 for o in items if o.get("status") != "ok")
    meta = [
        ("profile", profile),
        ("date", generated.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
        ("git commit", commit_text),
        ("torch", str(env.get("torch", "unknown"))),
        ("device", str(env.get("device", "unknown"))),
        ("total wall time", _fmt_seconds(total_wall) + f" ({len(items)} notebooks, {n_failed} failed)"),
    ]
    page = _html_page(profile, meta, counts, rows)

    summary = {
        "profile": profile,
        "generated": generated.isoformat(timespec="seconds"),
        "environment": env,
        "total_wall_seconds": round(total_wall, 1),
        "counts": counts,
        "failed_notebooks": [o["name"] for o in items if o.get("status") != "ok"],
        "experiments": entries,
    }
    html_path = profile_dir / "index.html"
    json_path = profile_dir / "index.json"
    for path, text in ((json_path, json.dumps(summary, indent=2, default=str)), (html_path, page)):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return html_path
