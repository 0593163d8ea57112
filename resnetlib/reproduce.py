"""The runner behind ``resnetlib reproduce``: validate every params file, execute the notebooks with
papermill, render them as HTML and write the index page.

Layout (``reports_dir`` defaults to ``<repo>/reports``)::

    params/NAME/PROFILE.yaml            what is injected (``_base.yaml`` merged underneath)
    reports/PROFILE/NAME.ipynb          the executed notebook of the last successful run
    reports/PROFILE/NAME.html           ... rendered, code hidden
    reports/PROFILE/NAME/               its output_dir: results.json, figures
    reports/PROFILE/NAME.failed.ipynb   the executed notebook of the last run, if that run failed
    reports/PROFILE/NAME.failed.html    ... rendered (the red error banner is visible)
    reports/PROFILE/NAME.failed/        ... and what it wrote into its output_dir
    reports/PROFILE/NAME.log            stderr of the kernel process (not of the cells) of the last run
    reports/PROFILE/index.html, .json   one row per claim of the paper

Failure never destroys an earlier good result: the notebook is executed into a temporary file, and the
output folder of the previous run is moved aside (``.NAME.previous``) while the notebook runs. On
success the new files replace the old ones (and any ``NAME.failed.*`` of an earlier attempt is removed);
on failure the new files become ``NAME.failed.*`` and the previous ``NAME.ipynb``/``NAME.html``/``NAME/``
stay untouched. An interrupted run (Ctrl-C) restores the previous output folder before re-raising; a run
killed outright is repaired at the start of the next run of that notebook.

Experiments are discovered: every ``notebooks/NAME.ipynb`` (names starting with ``_`` are skipped, for
scratch notebooks) is an experiment, and must have a module ``resnetlib.experiments.NAME`` with a
``Params`` model and ``params/NAME/<profile>.yaml`` for each profile it is run with.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import html
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import ConfigError, load_yaml, validate

__all__ = [
    "EXPERIMENTS",
    "PAPER_ORDER",
    "Outcome",
    "discover_experiments",
    "params_file_for",
    "default_params_model",
    "validate_profile",
    "run_profile",
    "add_arguments",
    "main",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
REPORTS_DIR = REPO_ROOT / "reports"

#: The paper's order (Table 1 first, the detection appendix last); other notebooks follow alphabetically.
PAPER_ORDER = (
    "architectures",
    "cifar_degradation",
    "imagenet_plain_vs_residual",
    "shortcut_options",
    "layer_responses",
    "resnet1202",
    "detection",
)
#: Parameters the runner always injects; every notebook must declare them in its ``parameters`` cell.
RUNNER_PARAMETERS = ("profile", "output_dir")
KERNEL_NAME = "python3"

ParamsModelFor = Callable[[str], type]


# --------------------------------------------------------------------------------------------- discovery
def discover_experiments(notebooks_dir: str | Path | None = None) -> list[str]:
    """Names of ``notebooks_dir/*.ipynb`` (not ``_*``) in the paper's order, then alphabetically."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    names = {p.stem for p in folder.glob("*.ipynb") if p.is_file() and not p.stem.startswith(("_", "."))}
    ordered = [n for n in PAPER_ORDER if n in names]
    return ordered + sorted(names - set(ordered))


#: The experiments found when resnetlib.reproduce was imported (the runner re-discovers at run time).
EXPERIMENTS: list[str] = discover_experiments()


def default_params_model(name: str) -> type:
    """``resnetlib.experiments.NAME.Params``."""
    module = importlib.import_module(f"resnetlib.experiments.{name}")
    try:
        return module.Params
    except AttributeError:
        raise AttributeError(f"module resnetlib.experiments.{name} has no class Params") from None


def params_file_for(name: str, profile: str, params_dir: str | Path | None = None) -> Path:
    return (Path(params_dir) if params_dir is not None else PARAMS_DIR) / name / f"{profile}.yaml"


def _display_path(path: Path) -> str:
    """Path relative to the repository when inside it (for messages and the index), else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _select(only: Iterable[str] | None, experiments: Sequence[str]) -> list[str]:
    if not only:
        return list(experiments)
    wanted: list[str] = []
    errors = []
    for name in only:
        if name in experiments:
            if name not in wanted:
                wanted.append(name)
            continue
        close = difflib.get_close_matches(name, experiments, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        errors.append(f"unknown experiment '{name}'{hint} (experiments: {', '.join(experiments) or 'none'})")
    if errors:
        raise ConfigError("\n".join(errors))
    return [n for n in experiments if n in wanted]  # run in the paper's order whatever --only's order


# --------------------------------------------------------------------------------------------- validation
def _check_one(
    name: str,
    profile: str,
    notebook: Path,
    params_path: Path,
    params_model_for: ParamsModelFor,
    force: bool,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The parameters to inject for one experiment (from its params file), or the problems found."""
    shown = _display_path(params_path)
    errors: list[str] = []
    if not params_path.is_file():
        folder = params_path.parent
        have = sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))
        if have:
            hint = f" (profiles with a params file: {', '.join(have)})"
        elif folder.is_dir():
            hint = f" ({_display_path(folder)} holds no params file)"
        else:
            hint = f" (no folder {_display_path(folder)})"
        return None, [f"no params file for profile '{profile}': {shown} is missing{hint}"]
    try:
        data = load_yaml(params_path)
    except ConfigError as exc:
        return None, [str(exc)]

    import papermill

    try:
        nb_params = papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # unreadable notebook
        return None, [f"{_display_path(notebook)}: cannot read its parameters: {type(exc).__name__}: {exc}"]
    if not nb_params:
        return None, [f"{_display_path(notebook)} has no cell tagged 'parameters'"]
    valid = sorted(nb_params)

    needed = list(RUNNER_PARAMETERS) + (["force"] if force else [])
    for key in needed:
        if key not in nb_params:
            errors.append(
                f"{_display_path(notebook)}: its parameters cell does not assign '{key}', "
                "which the runner injects"
            )
    for key in data:
        if key not in nb_params:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            errors.append(
                f"{shown}: unknown parameter '{key}'{hint} "
                f"(parameters of {_display_path(notebook)}: {', '.join(valid)})"
            )
    if "output_dir" in data:
        errors.append(f"{shown}: 'output_dir' is set by the runner (reports/<profile>/{name}/); remove it")
    if "profile" in data and data["profile"] != profile:
        errors.append(
            f"{shown}: profile: {data['profile']!r} contradicts the profile being run ('{profile}')"
        )

    try:
        model = params_model_for(name)
    except Exception as exc:
        errors.append(f"experiment '{name}': cannot load its Params model: {type(exc).__name__}: {exc}")
        return None, errors

    # Keys unknown to the notebook were reported above; pydantic judges the rest (types, ranges, and
    # keys the notebook has but Params lacks).
    candidate = {k: v for k, v in data.items() if k in nb_params and k != "output_dir"}
    candidate["profile"] = profile
    if force:
        candidate["force"] = True
    try:
        validate(model, candidate, source=shown)
    except ConfigError as exc:
        errors.append(str(exc))
    if errors:
        return None, errors
    inject = {k: v for k, v in data.items() if k != "output_dir"}
    return inject, []


def validate_profile(
    profile: str,
    only: Iterable[str] | None = None,
    *,
    force: bool = False,
    notebooks_dir: str | Path | None = None,
    params_dir: str | Path | None = None,
    params_model_for: ParamsModelFor | None = None,
) -> dict[str, dict[str, Any]]:
    """Check every selected experiment's params file before anything runs.

    Returns ``{name: parameters from params/NAME/PROFILE.yaml}`` in run order. Raises one ConfigError
    listing every problem of every experiment: a missing params file, a key that is not a parameter of
    the notebook (with the closest valid name), a value the experiment's ``Params`` rejects.
    """
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    params_model_for = params_model_for or default_params_model
    experiments = discover_experiments(notebooks_dir)
    if not experiments:
        raise ConfigError(f"no notebooks found in {_display_path(notebooks_dir)}")
    selected = _select(only, experiments)

    out: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name in selected:
        inject, errors = _check_one(
            name,
            profile,
            notebooks_dir / f"{name}.ipynb",
            params_file_for(name, profile, params_dir),
            params_model_for,
            force,
        )
        if errors:
            problems.append(f"[{name}]\n  " + "\n  ".join(e.replace("\n", "\n  ") for e in errors))
        else:
            out[name] = inject or {}
    if problems:
        n = len(problems)
        raise ConfigError(
            f"profile '{profile}': {n} experiment{'s' if n > 1 else ''} with invalid parameters "
            f"(nothing was run):\n" + "\n".join(problems)
        )
    return out


# --------------------------------------------------------------------------------------------- outcome
@dataclasses.dataclass
class Outcome:
    """What happened to one notebook in one run (also stored in ``index.json``)."""

    name: str
    profile: str
    status: str  # "ok" or "failed"
    params_file: str
    notebook: str  # the executed notebook of this run (NAME.ipynb, or NAME.failed.ipynb)
    html: str | None = None
    results: str | None = None  # results.json of this run (None when failed)
    started: str = ""
    ended: str = ""
    wall_seconds: float = 0.0
    ename: str | None = None
    evalue: str | None = None
    cell_index: int | None = None  # papermill's index (the injected-parameters cell counts)
    execution_count: int | None = None
    log: str | None = None  # the kernel process's stderr, when it wrote any
    render_error: str | None = None
    previous_kept: str | None = None  # the earlier good result a failed run left in place
    carried_over: bool = False  # from an earlier run (not part of this --only run)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not self.render_error

    @classmethod
    def from_dict(cls, data: dict[str, Any], **changes: Any) -> Outcome:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in fields}, **changes})


# --------------------------------------------------------------------------------------------- execution
@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 (inherited by the kernel process) to ``path`` while running a notebook.

    The kernel's own chatter (ipykernel warnings, "Killed", C-level crash messages) lands in a log
    file instead of between the runner's progress lines; the cells' output is in the notebook anyway.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    try:
        with open(path, "wb") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _recover(profile_dir: Path, name: str) -> None:
    """Undo what a run killed mid-notebook left behind: the previous output folder comes back."""
    previous = profile_dir / f".{name}.previous"
    if previous.exists():
        _rm(profile_dir / name)
        previous.rename(profile_dir / name)
    for stale in profile_dir.glob(f".{name}.running*.ipynb"):
        _rm(stale)


def _locate_failure(nb_path: Path) -> tuple[int | None, int | None]:
    """(cell index, execution count) of the cell that was running when the kernel died or timed out."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:
        return None, None
    last = None
    for i, cell in enumerate(nb.cells):
        if (cell.get("metadata", {}).get("papermill") or {}).get("start_time"):
            last = i
    if last is None:
        return None, None
    return last, nb.cells[last].get("execution_count")


def _add_error_banner(nb_path: Path, source_nb: Path, text: str) -> None:
    """Put a red banner on top of an executed notebook papermill could not finish (kernel death,
    timeout, start failure), so the rendered page shows the error as papermill's own errors are shown."""
    import nbformat

    try:
        nb = nbformat.read(nb_path if nb_path.exists() else source_nb, as_version=4)
    except Exception:
        nb = nbformat.v4.new_notebook()
    banner = nbformat.v4.new_markdown_cell(
        '<span style="color:red; font-size:1.6em;">Execution failed</span>\n\n'
        f"<pre>{html.escape(text)}</pre>",
        metadata={"tags": ["reproduce-error"]},
    )
    nb.cells.insert(0, banner)
    nbformat.write(nb, nb_path)


def _now() -> datetime:
    return datetime.now().astimezone()


def _run_one(
    name: str,
    profile: str,
    inject: dict[str, Any],
    *,
    notebook: Path,
    params_path: Path,
    profile_dir: Path,
    force: bool,
    cwd: Path,
    kernel_name: str,
    execution_timeout: int | None,
) -> Outcome:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .report.render import render_html

    _recover(profile_dir, name)
    out_dir = profile_dir / name
    previous = profile_dir / f".{name}.previous"
    running = profile_dir / f".{name}.running.ipynb"
    log = profile_dir / f"{name}.log"
    had_previous = out_dir.exists()
    if had_previous:
        out_dir.rename(previous)
    out_dir.mkdir(parents=True)

    parameters = {**inject, "profile": profile, "output_dir": str(out_dir.resolve())}
    if force:
        parameters["force"] = True
    started = _now()
    t0 = time.perf_counter()
    error: dict[str, Any] | None = None
    try:
        with _stderr_to(log):
            papermill.execute_notebook(
                str(notebook),
                str(running),
                parameters=parameters,
                kernel_name=kernel_name,
                cwd=str(cwd),
                log_output=False,
                progress_bar=False,
                execution_timeout=execution_timeout,
            )
    except PapermillExecutionError as exc:
        error = {"ename": exc.ename, "evalue": exc.evalue, "cell_index": exc.cell_index,
                 "execution_count": exc.exec_count, "banner": False}
    except Exception as exc:  # kernel death, timeout, kernel that does not start, ...
        cell, count = _locate_failure(running) if running.exists() else (None, None)
        evalue = str(exc) or repr(exc)
        if type(exc).__name__ == "DeadKernelError":
            evalue += " (the kernel process exited: out of memory, a crash, or os._exit)"
        error = {"ename": type(exc).__name__, "evalue": evalue, "cell_index": cell,
                 "execution_count": count, "banner": True}
    except BaseException:  # Ctrl-C: put everything back as it was, then stop
        _rm(running)
        _rm(out_dir)
        if had_previous:
            previous.rename(out_dir)
        raise
    wall = time.perf_counter() - t0
    ended = _now()
    log_kept = str(log) if log.exists() and log.stat().st_size else None
    if log.exists() and not log_kept:
        log.unlink()

    common = dict(name=name, profile=profile, params_file=_display_path(params_path),
                  started=started.isoformat(timespec="seconds"), ended=ended.isoformat(timespec="seconds"),
                  wall_seconds=round(wall, 1), log=log_kept)
    if error is None:
        final_nb, html_path = profile_dir / f"{name}.ipynb", profile_dir / f"{name}.html"
        running.replace(final_nb)
        _rm(previous)
        for stale in (f"{name}.failed.ipynb", f"{name}.failed.html", f"{name}.failed"):
            _rm(profile_dir / stale)
        outcome = Outcome(
            status="ok", notebook=str(final_nb), results=str(out_dir / "results.json"), **common
        )
    else:
        final_nb, html_path = profile_dir / f"{name}.failed.ipynb", profile_dir / f"{name}.failed.html"
        failed_dir = profile_dir / f"{name}.failed"
        _rm(failed_dir)
        out_dir.rename(failed_dir)
        if had_previous:
            previous.rename(out_dir)
        if error.pop("banner"):
            where = f" at cell {error['cell_index']}" if error["cell_index"] is not None else ""
            _add_error_banner(running, notebook, f"{error['ename']}: {error['evalue']}{where}")
        if running.exists():
            running.replace(final_nb)
        kept = profile_dir / f"{name}.html"
        outcome = Outcome(
            status="failed",
            notebook=str(final_nb),
            previous_kept=str(kept) if had_previous and kept.exists() else None,
            **error,
            **common,
        )
    try:
        render_html(final_nb, html_path)
        outcome.html = str(html_path)
    except Exception as exc:
        outcome.render_error = f"{type(exc).__name__}: {exc}"
    return outcome


def _previous_outcomes(profile_dir: Path, skip: set[str], experiments: Sequence[str]) -> list[Outcome]:
    """Outcomes of notebooks not run this time, from the last index.json (for ``--only`` runs)."""
    path = profile_dir / "index.json"
    try:
        data = json.loads(path.read_text())
        entries = data["experiments"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    out = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name and name not in skip and name in experiments:
            try:
                out.append(Outcome.from_dict(entry, carried_over=True))
            except TypeError:
                continue
    return out


def _line(outcome: Outcome, i: int, n: int, width: int) -> str:
    status = "ok" if outcome.status == "ok" else "FAILED"
    started = outcome.started[11:19]
    ended = outcome.ended[11:19]
    text = f"[{i}/{n}] {outcome.name:<{width}}  {started} -> {ended}  {outcome.wall_seconds:8.1f}s  {status}"
    if outcome.status != "ok":
        where = f" at cell {outcome.cell_index}" if outcome.cell_index is not None else ""
        evalue = (outcome.evalue or "").strip().splitlines()
        text += f"  {outcome.ename}: {evalue[0] if evalue else ''}{where}  ({outcome.notebook})"
    if outcome.render_error:
        text += f"  [HTML not rendered: {outcome.render_error}]"
    return text


def run_profile(
    profile: str,
    only: Iterable[str] | None = None,
    force: bool = False,
    reports_dir: str | Path | None = None,
    progress: bool = True,
    *,
    notebooks_dir: str | Path | None = None,
    params_dir: str | Path | None = None,
    params_model_for: ParamsModelFor | None = None,
    cwd: str | Path | None = None,
    kernel_name: str = KERNEL_NAME,
    execution_timeout: int | None = None,
    environment: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Validate all selected experiments, then execute, render and index them; returns this run's outcomes.

    A failing notebook does not stop the others. The index (``reports_dir/PROFILE/index.html``) lists
    this run's notebooks and, after an ``--only`` run, the other notebooks' last outcomes (marked as
    from an earlier run).
    """
    from .report.index import build_index

    only = list(only) if only else None
    validated = validate_profile(profile, only, force=force, notebooks_dir=notebooks_dir,
                                 params_dir=params_dir, params_model_for=params_model_for)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    profile_dir = (Path(reports_dir) if reports_dir is not None else REPORTS_DIR).absolute() / profile
    profile_dir.mkdir(parents=True, exist_ok=True)
    cwd = Path(cwd) if cwd is not None else REPO_ROOT

    names = list(validated)
    width = max(len(n) for n in names)
    if progress:
        print(f"reproduce: profile '{profile}', {len(names)} notebook(s) -> {profile_dir}", flush=True)
    outcomes: list[Outcome] = []
    for i, name in enumerate(names, 1):
        if progress:
            print(f"[{i}/{len(names)}] {name:<{width}}  started {_now():%H:%M:%S} ...", flush=True)
        outcome = _run_one(
            name,
            profile,
            validated[name],
            notebook=notebooks_dir / f"{name}.ipynb",
            params_path=params_file_for(name, profile, params_dir),
            profile_dir=profile_dir,
            force=force,
            cwd=cwd,
            kernel_name=kernel_name,
            execution_timeout=execution_timeout,
        )
        outcomes.append(outcome)
        if progress:
            print(_line(outcome, i, len(names), width), flush=True)

    listed = list(outcomes)
    if only:
        experiments = discover_experiments(notebooks_dir)
        earlier = {o.name: o for o in _previous_outcomes(profile_dir, set(names), experiments)}
        now = {o.name: o for o in outcomes}
        listed = [now.get(n) or earlier[n] for n in experiments if n in now or n in earlier]
    index = build_index(profile_dir.parent, listed, profile=profile, environment=environment)
    if progress:
        failed = [o.name for o in outcomes if not o.ok]
        total = sum(o.wall_seconds for o in outcomes)
        verdict = f"{len(failed)} failed: {', '.join(failed)}" if failed else "all ok"
        print(
            f"reproduce: {len(outcomes)} notebook(s) in {total:.1f}s, {verdict}; index: {index}", flush=True
        )
    return outcomes


# --------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``resnetlib reproduce`` (the CLI's subcommand calls :func:`main` with the result)."""
    parser.add_argument("--profile", default="cpu",
                        help="params/NAME/PROFILE.yaml to use: smoke, cpu, paper, or your own (default: cpu)")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help="run only these experiments (see --list)")
    parser.add_argument("--force", action="store_true",
                        help="retrain even where a cached run with the same configuration exists")
    parser.add_argument("--reports-dir", type=Path, default=None,
                        help="root of the reports; PROFILE/ is created inside "
                        f"(default: {_display_path(REPORTS_DIR)})")
    parser.add_argument("--list", action="store_true",
                        help="list the experiments and their params files, run nothing")
    return parser


def _list(profile: str) -> int:
    experiments = discover_experiments()
    if not experiments:
        print(f"no notebooks in {_display_path(NOTEBOOKS_DIR)}")
        return 0
    width = max(len(n) for n in experiments)
    for name in experiments:
        folder = PARAMS_DIR / name
        files = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
        mark = "" if params_file_for(name, profile).is_file() else f"  (no {profile}.yaml)"
        print(f"{name:<{width}}  notebooks/{name}.ipynb  params/{name}/: {', '.join(files) or 'none'}{mark}")
    return 0


def main(args: argparse.Namespace) -> int:
    """Run ``resnetlib reproduce``; returns the exit status (0 ok, 1 a notebook failed, 2 bad parameters)."""
    if getattr(args, "list", False):
        return _list(args.profile)
    try:
        outcomes = run_profile(args.profile, only=args.only, force=args.force, reports_dir=args.reports_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":  # python -m resnetlib.reproduce
    _parser = argparse.ArgumentParser(prog="resnetlib reproduce", description=__doc__.split("\n\n")[0])
    sys.exit(main(add_arguments(_parser).parse_args()))
