"""Notebook execution: one notebook at a time, executed with papermill, committed or rolled back, rendered.

Failure never destroys an earlier good result: the notebook is executed into a temporary file, and the
output folder of the previous run is moved aside (``.NAME.previous``) while the notebook runs. On
success the new files replace the old ones (and any ``NAME.failed.*`` of an earlier attempt is removed);
on failure the new files become ``NAME.failed.*`` and the previous ``NAME.ipynb``/``NAME.html``/``NAME/``
stay untouched. An interrupted run (Ctrl-C) restores the previous output folder before re-raising; a run
killed outright is repaired at the start of the next run of that notebook. In code: :func:`run_one` is
execute (:func:`_execute`) -> commit (:func:`_commit`) or roll back (:func:`_roll_back`) -> render
(:func:`_render`), with :func:`_recover`, :func:`_set_aside` and :func:`_put_back` around the execution.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .profile import display_path, params_file_for

__all__ = ["Outcome", "Run", "run_all", "run_one"]


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
    cpu_seconds: float | None = None  # CPU time of its kernel process (what it trained inside, and analysis)
    ename: str | None = None
    evalue: str | None = None
    cell_index: int | None = None  # papermill's index (the injected-parameters cell counts)
    execution_count: int | None = None
    log: str | None = None  # the kernel process's stderr, when it wrote any
    render_error: str | None = None
    previous_kept: str | None = None  # the earlier good result a failed run left in place
    carried_over: bool = False  # from an earlier run (not part of this --only run)
    overrides: list[str] = dataclasses.field(default_factory=list)  # the --set items applied to it

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not self.render_error

    @classmethod
    def from_dict(cls, data: dict[str, Any], **changes: Any) -> Outcome:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in fields}, **changes})


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
class Run:
    """One ``run_profile`` call: where notebooks, params and reports are, how kernels are started, and the
    ``--set`` items applied to each experiment (recorded in its results.json)."""

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
    overrides: Mapping[str, list[str]] = dataclasses.field(default_factory=dict)

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


def _execute(notebook: Path, slot: _Slot, parameters: dict[str, Any], run: Run) -> dict[str, Any] | None:
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


def _record_overrides(results: Path, overrides: list[str]) -> None:
    """Add the ``--set`` items applied to this experiment to the results.json its notebook wrote."""
    try:
        data = json.loads(results.read_text())
    except (OSError, ValueError):
        return  # no (readable) results: the index reports that
    if isinstance(data, dict):
        data["overrides"] = list(overrides)
        tmp = results.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(results)


def _commit(slot: _Slot, common: dict[str, Any]) -> Outcome:
    """Success: the new notebook and output folder replace the old; leftovers of failed attempts go."""
    from ..report.render import log_path_for

    _record_overrides(slot.out_dir / "results.json", common["overrides"])

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
    from ..report.render import render_html

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


def _parameters(inject: dict[str, Any], run: Run, slot: _Slot) -> dict[str, Any]:
    parameters = {**inject, "profile": run.profile, "output_dir": str(slot.out_dir.resolve())}
    return {**parameters, "force": True} if run.force and slot.name not in run.pretrained else parameters


def _children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children: a notebook's kernel, once shut down, is one
    (its training inside the notebook counts toward the profile's cost, issue 20)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(run: Run, name: str, inject: dict[str, Any]) -> Outcome:
    """Execute one notebook, then commit its result or roll back to the previous one, then render it."""
    slot, notebook = _Slot(run.profile_dir, name), run.notebooks_dir / f"{name}.ipynb"
    _recover(slot)
    had_previous = _set_aside(slot)
    started, t0, cpu0 = _now(), time.perf_counter(), _children_cpu_seconds()
    try:
        error = _execute(notebook, slot, _parameters(inject, run, slot), run)
    except BaseException:  # Ctrl-C: put everything back as it was, then stop
        _put_back(slot, had_previous)
        raise
    common = dict(name=name, profile=run.profile,
                  params_file=display_path(params_file_for(name, run.profile, run.params_dir)),
                  started=started.isoformat(timespec="seconds"), ended=_now().isoformat(timespec="seconds"),
                  wall_seconds=round(time.perf_counter() - t0, 1), log=_kept_log(slot.log),
                  cpu_seconds=round(_children_cpu_seconds() - cpu0, 1),
                  overrides=list(run.overrides.get(name, [])))
    if error is None:
        return _render(_commit(slot, common))
    return _render(_roll_back(slot, had_previous, error, notebook, common))


def run_all(run: Run, validated: dict[str, dict[str, Any]]) -> list[Outcome]:
    """Run every validated notebook in order, one progress line before and after each."""
    names = list(validated)
    n, width = len(names), max(len(name) for name in names)
    run.say(f"reproduce: profile '{run.profile}', {n} notebook(s) -> {run.profile_dir}")
    outcomes: list[Outcome] = []
    for i, name in enumerate(names, 1):
        run.say(f"[{i}/{n}] {name:<{width}}  started {_now():%H:%M:%S} ...")
        outcomes.append(run_one(run, name, validated[name]))
        run.say(_line(outcomes[-1], i, n, width))
    return outcomes


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
