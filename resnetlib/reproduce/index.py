"""The index stage: what ``reports/PROFILE/index.html`` lists after a run, and the closing line of the log.

After an ``--only`` run the index lists this run's notebooks and the other notebooks' last outcomes (from the
previous ``index.json``, marked as from an earlier run); the header shows the ``--set`` items applied.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..devices import cpu_features, resolve_amp
from ..paths import REPO_ROOT
from ..train.environment import git_state, machine_device
from .execute import Outcome, Run
from .profile import discover_experiments, not_run_in

__all__ = ["collect_environment", "write_index"]


def collect_environment(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """What the index header shows: git commit and dirty flag (``git_state``, the function that also writes
    them into every run folder), torch version, device, CPU, python, host."""
    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "host": platform.node()}
    env.update({f"git_{k}": v for k, v in git_state(repo).items()})
    env.update(torch=torch.__version__, device=machine_device(), cpu=_cpu_text(), cpu_amp=resolve_amp("auto", "cpu"))
    return env


def _cpu_text() -> str:
    """The CPU the runs trained on: model, torch's kernel level, the bf16/AVX flags (they decide speed and,
    through the kernels, the numbers a seed gives)."""
    cpu = cpu_features()
    return f"{cpu['model']}, kernels {cpu['capability']}, flags {' '.join(cpu['flags']) or 'none recorded'}"


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


def _listed(run: Run, outcomes: list[Outcome], only: list[str] | None) -> list[Outcome]:
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


def write_index(run: Run, outcomes: list[Outcome], only: list[str] | None, *,
                environment: Mapping[str, Any] | None, queue_seconds: float,
                overrides: Mapping[str, list[str]] | None = None) -> Path:
    """Write ``index.html``/``index.json`` for this run (``resnetlib.report.index``) and log the closing line."""
    from ..report.index import build_index

    listed = _listed(run, outcomes, only)
    index = build_index(run.profile_dir.parent, listed, profile=run.profile,
                        environment=environment if environment is not None else collect_environment(),
                        queue_seconds=queue_seconds, overrides=overrides,
                        not_run=not_run_in(run.profile, [o.name for o in listed]))
    run.say(_closing_line(outcomes, index))
    return index
