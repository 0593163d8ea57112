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
    reports/PROFILE/NAME.training-log.txt  what the cells tagged ``log-output`` printed (kept off the page)
    reports/PROFILE/index.html, .json   one section per experiment, one row per claim of the paper

Failure never destroys an earlier good result: the notebook is executed into a temporary file, and the
output folder of the previous run is moved aside (``.NAME.previous``) while the notebook runs. On
success the new files replace the old ones (and any ``NAME.failed.*`` of an earlier attempt is removed);
on failure the new files become ``NAME.failed.*`` and the previous ``NAME.ipynb``/``NAME.html``/``NAME/``
stay untouched. An interrupted run (Ctrl-C) restores the previous output folder before re-raising; a run
killed outright is repaired at the start of the next run of that notebook. In code: :func:`_run_one` is
execute (:func:`_execute`) -> commit (:func:`_commit`) or roll back (:func:`_roll_back`) -> render
(:func:`_render`), with :func:`_recover`, :func:`_set_aside` and :func:`_put_back` around the execution.

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
from .paths import NOTEBOOKS_DIR, PARAMS_DIR, REPO_ROOT, REPORTS_DIR

__all__ = [
    "EXPERIMENTS",
    "LEFT_OUT_OF",
    "ON_REQUEST",
    "PAPER_ORDER",
    "Outcome",
    "add_arguments",
    "default_params_model",
    "discover_experiments",
    "main",
    "params_file_for",
    "run_profile",
    "validate_profile",
]

#: The paper's order (Table 1 first, the detection appendix last); other notebooks follow alphabetically.
PAPER_ORDER = (
    "architectures",
    "cifar_degradation",
    "imagenet_plain_vs_residual",
    "shortcut_options",
    "imagenet_deeper",
    "layer_responses",
    "resnet1202",
    "detection",
    "detection_improvements",
    "localization",
    "budget_study",
)
#: Experiments that cost hours at every profile but smoke: they run only when named (``--only``), and
#: their committed result lies under reports/reference/ (the budget study: ~5 core-hours at cpu).
ON_REQUEST = frozenset({"budget_study"})
#: Experiments a profile leaves out unless named, because they would take it past its time budget (the
#: cpu profile: 30 minutes on 2 cores, 27.6 measured without these); ``cpu-long`` and ``paper`` run them.
LEFT_OUT_OF = {"cpu": frozenset({"detection_improvements", "localization"})}
#: The profile that runs every notebook, ``ON_REQUEST`` ones included (CI's "Run All" check).
EVERY_NOTEBOOK_PROFILE = "smoke"
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


def _select(only: Iterable[str] | None, experiments: Sequence[str], profile: str = EVERY_NOTEBOOK_PROFILE
            ) -> list[str]:
    """The experiments named by ``only`` (checked), else every one; outside the smoke profile the
    ``ON_REQUEST`` ones only when named, and those ``LEFT_OUT_OF`` the profile only when named."""
    if not only:
        return [e for e in experiments if profile == EVERY_NOTEBOOK_PROFILE
                or (e not in ON_REQUEST and e not in LEFT_OUT_OF.get(profile, ()))]
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
def _missing_params_file(params_path: Path, profile: str) -> str:
    """The message for a profile without a params file, naming the profiles that have one."""
    folder = params_path.parent
    have = sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))
    if have:
        hint = f" (profiles with a params file: {', '.join(have)})"
    elif folder.is_dir():
        hint = f" ({_display_path(folder)} holds no params file)"
    else:
        hint = f" (no folder {_display_path(folder)})"
    return f"no params file for profile '{profile}': {_display_path(params_path)} is missing{hint}"


def _notebook_parameters(notebook: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The parameters the notebook's ``parameters`` cell assigns (papermill's view), or the problem."""
    import papermill

    try:
        nb_params = papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # unreadable notebook
        return None, f"{_display_path(notebook)}: cannot read its parameters: {type(exc).__name__}: {exc}"
    if not nb_params:
        return None, f"{_display_path(notebook)} has no cell tagged 'parameters'"
    return nb_params, None


def _unknown_keys(data: dict[str, Any], nb_params: dict[str, Any], shown: str, notebook: Path) -> list[str]:
    """Keys of the params file the notebook does not assign, each with the closest valid name."""
    valid = sorted(nb_params)
    errors = []
    for key in data:
        if key not in nb_params:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            errors.append(f"{shown}: unknown parameter '{key}'{hint} "
                          f"(parameters of {_display_path(notebook)}: {', '.join(valid)})")
    return errors


def _runner_key_problems(name: str, profile: str, data: dict[str, Any], nb_params: dict[str, Any],
                         shown: str, notebook: Path, force: bool) -> list[str]:
    """What the runner injects must be declared by the notebook and must not be set by the params file."""
    needed = list(RUNNER_PARAMETERS) + (["force"] if force else [])
    errors = [f"{_display_path(notebook)}: its parameters cell does not assign '{key}', which the runner injects"
              for key in needed if key not in nb_params]
    if "output_dir" in data:
        errors.append(f"{shown}: 'output_dir' is set by the runner (reports/<profile>/{name}/); remove it")
    if "profile" in data and data["profile"] != profile:
        errors.append(f"{shown}: profile: {data['profile']!r} contradicts the profile being run ('{profile}')")
    return errors


def _model_problems(name: str, profile: str, data: dict[str, Any], nb_params: dict[str, Any], shown: str,
                    params_model_for: ParamsModelFor, force: bool) -> list[str]:
    """What the experiment's typed ``Params`` rejects (types, ranges, keys the notebook has but Params lacks);
    keys unknown to the notebook are reported by :func:`_unknown_keys`."""
    try:
        model = params_model_for(name)
    except Exception as exc:
        return [f"experiment '{name}': cannot load its Params model: {type(exc).__name__}: {exc}"]
    candidate = {k: v for k, v in data.items() if k in nb_params and k != "output_dir"}
    candidate["profile"] = profile
    if force:
        candidate["force"] = True
    try:
        validate(model, candidate, source=shown)
    except ConfigError as exc:
        return [str(exc)]
    return []


def _check_one(
    name: str,
    profile: str,
    notebook: Path,
    params_path: Path,
    params_model_for: ParamsModelFor,
    force: bool,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The parameters to inject for one experiment (from its params file), or the problems found."""
    if not params_path.is_file():
        return None, [_missing_params_file(params_path, profile)]
    try:
        data = load_yaml(params_path)
    except ConfigError as exc:
        return None, [str(exc)]
    nb_params, problem = _notebook_parameters(notebook)
    if nb_params is None:
        return None, [problem or ""]
    shown = _display_path(params_path)
    errors = _runner_key_problems(name, profile, data, nb_params, shown, notebook, force)
    errors += _unknown_keys(data, nb_params, shown, notebook)
    errors += _model_problems(name, profile, data, nb_params, shown, params_model_for, force)
    if errors:
        return None, errors
    return {k: v for k, v in data.items() if k != "output_dir"}, []


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
    selected = _select(only, experiments, profile)

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


@dataclasses.dataclass(frozen=True)
class _Slot:
    """The files one notebook owns in ``reports/PROFILE/`` (see the module docstring for the layout)."""

    profile_dir: Path
    name: str

    def path(self, suffix: str) -> Path:
        return self.profile_dir / f"{self.name}{suffix}"

    @property
    def out_dir(self) -> Path:  # the notebook's output_dir
        return self.path("")

    @property
    def previous(self) -> Path:  # the last good output_dir, set aside while the notebook runs
        return self.profile_dir / f".{self.name}.previous"

    @property
    def running(self) -> Path:  # the executed notebook while it is being written
        return self.profile_dir / f".{self.name}.running.ipynb"

    @property
    def log(self) -> Path:  # stderr of the kernel process
        return self.path(".log")


@dataclasses.dataclass(frozen=True)
class _Run:
    """One ``run_profile`` call: where notebooks, params and reports are, and how kernels are started."""

    profile: str
    profile_dir: Path
    notebooks_dir: Path
    params_dir: Path | None
    force: bool
    cwd: Path
    kernel_name: str
    timeout: int | None
    progress: bool
    #: Experiments whose runs the run queue (``--jobs``) trained first, with ``force`` if asked: their
    #: notebooks then load those runs instead of forcing them again.
    pretrained: frozenset[str] = frozenset()

    def say(self, text: str) -> None:
        if self.progress:
            print(text, flush=True)


# ------------------------------------------------------------------------ execution: before and Ctrl-C
def _recover(slot: _Slot) -> None:
    """Undo what a run killed mid-notebook left behind: the previous output folder comes back."""
    if slot.previous.exists():
        _rm(slot.out_dir)
        slot.previous.rename(slot.out_dir)
    for stale in slot.profile_dir.glob(f".{slot.name}.running*.ipynb"):
        _rm(stale)


def _set_aside(slot: _Slot) -> bool:
    """Move the last output folder aside and give the notebook an empty one; True if there was one."""
    had_previous = slot.out_dir.exists()
    if had_previous:
        slot.out_dir.rename(slot.previous)
    slot.out_dir.mkdir(parents=True)
    return had_previous


def _put_back(slot: _Slot, had_previous: bool) -> None:
    """After an interrupted run (Ctrl-C): everything as it was before the run started."""
    _rm(slot.running)
    _rm(slot.out_dir)
    if had_previous:
        slot.previous.rename(slot.out_dir)


# ------------------------------------------------------------------------ execution: papermill
def _locate_failure(nb_path: Path) -> tuple[int | None, int | None]:
    """(cell index, execution count) of the cell that was running when the kernel died or timed out."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:
        return None, None
    started = [i for i, c in enumerate(nb.cells) if (c.get("metadata", {}).get("papermill") or {}).get("start_time")]
    if not started:
        return None, None
    return started[-1], nb.cells[started[-1]].get("execution_count")


def _cell_error(exc: Any) -> dict[str, Any]:
    """A cell raised: papermill knows where (its banner is already in the notebook)."""
    return {"ename": exc.ename, "evalue": exc.evalue, "cell_index": exc.cell_index,
            "execution_count": exc.exec_count, "banner": False}


def _kernel_error(exc: Exception, running: Path) -> dict[str, Any]:
    """The kernel died, timed out or did not start: find the cell it was in; the notebook needs a banner."""
    cell, count = _locate_failure(running) if running.exists() else (None, None)
    evalue = str(exc) or repr(exc)
    if type(exc).__name__ == "DeadKernelError":
        evalue += " (the kernel process exited: out of memory, a crash, or os._exit)"
    return {"ename": type(exc).__name__, "evalue": evalue, "cell_index": cell, "execution_count": count,
            "banner": True}


def _execute(notebook: Path, slot: _Slot, parameters: dict[str, Any], run: _Run) -> dict[str, Any] | None:
    """Run the notebook into ``slot.running`` (kernel stderr to ``slot.log``); None, or what went wrong."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        with _stderr_to(slot.log):
            papermill.execute_notebook(
                str(notebook), str(slot.running), parameters=parameters, kernel_name=run.kernel_name,
                cwd=str(run.cwd), log_output=False, progress_bar=False, execution_timeout=run.timeout,
            )
    except PapermillExecutionError as exc:
        return _cell_error(exc)
    except Exception as exc:  # kernel death, timeout, kernel that does not start, ...
        return _kernel_error(exc, slot.running)
    return None


def _kept_log(log: Path) -> str | None:
    """The kernel's stderr file if it holds anything; an empty one is removed."""
    if log.exists() and log.stat().st_size:
        return str(log)
    log.unlink(missing_ok=True)
    return None


# ------------------------------------------------------------------------ commit or roll back
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


def _commit(slot: _Slot, common: dict[str, Any]) -> Outcome:
    """Success: the new notebook and output folder replace the old; leftovers of failed attempts go."""
    from .report.render import log_path_for

    final_nb = slot.path(".ipynb")
    slot.running.replace(final_nb)
    _rm(slot.previous)
    failed_html = slot.path(".failed.html")
    for stale in (slot.path(".failed.ipynb"), failed_html, slot.path(".failed"), log_path_for(failed_html)):
        _rm(stale)
    return Outcome(status="ok", notebook=str(final_nb), results=str(slot.out_dir / "results.json"), **common)


def _roll_back(slot: _Slot, had_previous: bool, error: dict[str, Any], notebook: Path,
               common: dict[str, Any]) -> Outcome:
    """Failure: the new files become ``NAME.failed.*``; the previous good result is back in place."""
    _rm(slot.path(".failed"))
    slot.out_dir.rename(slot.path(".failed"))
    if had_previous:
        slot.previous.rename(slot.out_dir)
    if error.pop("banner"):
        where = f" at cell {error['cell_index']}" if error["cell_index"] is not None else ""
        _add_error_banner(slot.running, notebook, f"{error['ename']}: {error['evalue']}{where}")
    final_nb = slot.path(".failed.ipynb")
    if slot.running.exists():
        slot.running.replace(final_nb)
    kept = slot.path(".html")
    previous_kept = str(kept) if had_previous and kept.exists() else None
    return Outcome(status="failed", notebook=str(final_nb), previous_kept=previous_kept, **error, **common)


# ------------------------------------------------------------------------ render
def _render(outcome: Outcome) -> Outcome:
    """Render the outcome's executed notebook beside it (``.ipynb`` -> ``.html``); a failure is recorded."""
    from .report.render import render_html

    html_path = Path(outcome.notebook).with_suffix(".html")
    try:
        render_html(outcome.notebook, html_path)
        outcome.html = str(html_path)
    except Exception as exc:
        outcome.render_error = f"{type(exc).__name__}: {exc}"
    return outcome


# ------------------------------------------------------------------------ one notebook
def _now() -> datetime:
    return datetime.now().astimezone()


def _parameters(inject: dict[str, Any], run: _Run, slot: _Slot) -> dict[str, Any]:
    parameters = {**inject, "profile": run.profile, "output_dir": str(slot.out_dir.resolve())}
    return {**parameters, "force": True} if run.force and slot.name not in run.pretrained else parameters


def _run_one(run: _Run, name: str, inject: dict[str, Any]) -> Outcome:
    """Execute one notebook, then commit its result or roll back to the previous one, then render it."""
    slot, notebook = _Slot(run.profile_dir, name), run.notebooks_dir / f"{name}.ipynb"
    _recover(slot)
    had_previous = _set_aside(slot)
    started, t0 = _now(), time.perf_counter()
    try:
        error = _execute(notebook, slot, _parameters(inject, run, slot), run)
    except BaseException:  # Ctrl-C: put everything back as it was, then stop
        _put_back(slot, had_previous)
        raise
    common = dict(name=name, profile=run.profile,
                  params_file=_display_path(params_file_for(name, run.profile, run.params_dir)),
                  started=started.isoformat(timespec="seconds"), ended=_now().isoformat(timespec="seconds"),
                  wall_seconds=round(time.perf_counter() - t0, 1), log=_kept_log(slot.log))
    if error is None:
        return _render(_commit(slot, common))
    return _render(_roll_back(slot, had_previous, error, notebook, common))


def _run_all(run: _Run, validated: dict[str, dict[str, Any]]) -> list[Outcome]:
    """Run every validated notebook in order, one progress line before and after each."""
    names = list(validated)
    n, width = len(names), max(len(name) for name in names)
    run.say(f"reproduce: profile '{run.profile}', {n} notebook(s) -> {run.profile_dir}")
    outcomes: list[Outcome] = []
    for i, name in enumerate(names, 1):
        run.say(f"[{i}/{n}] {name:<{width}}  started {_now():%H:%M:%S} ...")
        outcomes.append(_run_one(run, name, validated[name]))
        run.say(_line(outcomes[-1], i, n, width))
    return outcomes


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


def _listed(run: _Run, outcomes: list[Outcome], only: list[str] | None) -> list[Outcome]:
    """What the index lists: this run's outcomes and, after an ``--only`` run, the others' last ones."""
    if not only:
        return list(outcomes)
    experiments = discover_experiments(run.notebooks_dir)
    now = {o.name: o for o in outcomes}
    earlier = {o.name: o for o in _previous_outcomes(run.profile_dir, set(now), experiments)}
    return [now.get(n) or earlier[n] for n in experiments if n in now or n in earlier]


def _closing_line(outcomes: list[Outcome], index: Path) -> str:
    failed = [o.name for o in outcomes if not o.ok]
    total = sum(o.wall_seconds for o in outcomes)
    verdict = f"{len(failed)} failed: {', '.join(failed)}" if failed else "all ok"
    return f"reproduce: {len(outcomes)} notebook(s) in {total:.1f}s, {verdict}; index: {index}"


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
    jobs: int = 1,
) -> list[Outcome]:
    """Validate all selected experiments, then execute, render and index them; returns this run's outcomes.

    ``jobs`` > 1 first trains the experiments' planned runs that many at a time in separate processes
    (:func:`_pretrain`); the notebooks then find them in the run cache.

    A failing notebook does not stop the others. The index (``reports_dir/PROFILE/index.html``) lists
    this run's notebooks and, after an ``--only`` run, the other notebooks' last outcomes (marked as
    from an earlier run).
    """
    from .report.index import build_index

    only = list(only) if only else None
    validated = validate_profile(profile, only, force=force, notebooks_dir=notebooks_dir,
                                 params_dir=params_dir, params_model_for=params_model_for)
    run = _Run(
        profile=profile,
        profile_dir=(Path(reports_dir) if reports_dir is not None else REPORTS_DIR).absolute() / profile,
        notebooks_dir=Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR,
        params_dir=Path(params_dir) if params_dir is not None else None,
        force=force, cwd=Path(cwd) if cwd is not None else REPO_ROOT, kernel_name=kernel_name,
        timeout=execution_timeout, progress=progress,
    )
    run.profile_dir.mkdir(parents=True, exist_ok=True)
    queue_seconds = 0.0
    if jobs > 1:
        start = time.perf_counter()
        run = _pretrain(run, validated, jobs, params_model_for or default_params_model)
        queue_seconds = time.perf_counter() - start
    outcomes = _run_all(run, validated)
    index = build_index(run.profile_dir.parent, _listed(run, outcomes, only), profile=profile,
                        environment=environment, queue_seconds=queue_seconds)
    run.say(_closing_line(outcomes, index))
    return outcomes


# --------------------------------------------------------------------------------------------- --jobs
def planned_runs(run: _Run, validated: dict[str, dict[str, Any]],
                 params_model_for: ParamsModelFor) -> dict[str, list[tuple[Path, Any]]]:
    """``{experiment: [(runs folder, TrainConfig), ...]}`` for the experiments whose module says what it will
    train (``planned_runs(params)``); the others train inside their notebooks as before."""
    out = {}
    for name, inject in validated.items():
        module = importlib.import_module(f"resnetlib.experiments.{name}")
        if not hasattr(module, "planned_runs"):
            continue
        params = validate(params_model_for(name), {**inject, "profile": run.profile}, source=name)
        configs = module.planned_runs(params)
        if configs:
            out[name] = [(params.runs_path(), config) for config in configs]
    return out


def _pretrain(run: _Run, validated: dict[str, dict[str, Any]], jobs: int,
              params_model_for: ParamsModelFor) -> _Run:
    """Train the union of the notebooks' planned runs, ``jobs`` at a time, before any notebook runs
    (``resnetlib.run_queue``); returns the run with those experiments marked as pretrained."""
    from .run_queue import train_queue

    planned = planned_runs(run, validated, params_model_for)
    by_folder: dict[Path, list[Any]] = {}
    for runs in planned.values():
        for runs_dir, config in runs:
            by_folder.setdefault(runs_dir, []).append(config)
    for runs_dir, configs in by_folder.items():
        train_queue(configs, runs_dir, jobs, force=run.force, say=run.say)
    return dataclasses.replace(run, pretrained=frozenset(planned))


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
    parser.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                        help="train up to N runs at once, each in its own process (CPU: cores/N threads each; "
                        "CUDA: N processes share the card) before the notebooks run (default: 1)")
    parser.add_argument("--list", action="store_true",
                        help="list the experiments and their params files, run nothing")
    return parser


def _positive_int(text: str) -> int:
    """argparse type of ``--jobs``: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
        outcomes = run_profile(args.profile, only=args.only, force=args.force, reports_dir=args.reports_dir,
                               jobs=getattr(args, "jobs", 1))
    except ConfigError as exc:
        from .cli import one_line

        print(f"resnetlib reproduce: {one_line(exc)}", file=sys.stderr)
        return 2
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":  # python -m resnetlib.reproduce
    _parser = argparse.ArgumentParser(prog="resnetlib reproduce", description=__doc__.split("\n\n")[0])
    sys.exit(main(add_arguments(_parser).parse_args()))
