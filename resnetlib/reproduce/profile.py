"""Profile loading and validation: which experiments run, and with which parameters.

Experiments are discovered: every ``notebooks/NAME.ipynb`` (names starting with ``_`` are skipped, for
scratch notebooks) is an experiment, and must have a module ``resnetlib.experiments.NAME`` declaring
``EXPERIMENT = Experiment(...)`` and ``params/NAME/<profile>.yaml`` for each profile it is run with. Each
selected experiment's params file (``_base.yaml`` merged underneath), then ``--set`` and ``--data``, are
validated against the notebook's parameters and the experiment's typed ``Params`` before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import ConfigError, StrictModel, load_yaml, validate
from ..experiments.declaration import Experiment, downloads
from ..paths import NOTEBOOKS_DIR, PARAMS_DIR, REPO_ROOT
from .data_roots import data_root_problems, parse_data_roots
from .overrides import apply_overrides, parse_set

__all__ = [
    "EVERY_NOTEBOOK_PROFILE",
    "KERNEL_NAME",
    "BUDGETS",
    "LEFT_OUT_OF",
    "ProfileBudget",
    "load_budgets",
    "not_run_in",
    "ON_REQUEST",
    "PAPER_ORDER",
    "Profile",
    "default_experiment",
    "discover_experiments",
    "display_path",
    "load_profile",
    "params_file_for",
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
#: Where each profile's budget and what it leaves out are written down (``ProfileBudget`` per profile).
PROFILES_FILE = PARAMS_DIR / "profiles.yaml"


class NotRunClaims(StrictModel):
    """Claims of an experiment that does run, whose nets the profile does not train, and why."""

    claims: str
    why: str


class ProfileBudget(StrictModel):
    """A profile's budget and what it leaves out to keep it (issue 20: sized by cost): ``left_out`` maps an
    experiment to why it runs only when named; ``claims_not_run`` lists claims it cannot decide within it."""

    budget: str
    left_out: dict[str, str] = {}
    claims_not_run: list[NotRunClaims] = []


def load_budgets(path: str | Path = PROFILES_FILE) -> dict[str, ProfileBudget]:
    """``params/profiles.yaml``, validated (a misspelt key is an error naming it)."""
    data = load_yaml(path) or {}
    return {name: validate(ProfileBudget, entry, f"{display_path(Path(path))}: profile '{name}'")
            for name, entry in data.items()}


#: Each profile's budget and its left-out experiments (``params/profiles.yaml``).
BUDGETS: dict[str, ProfileBudget] = {}
#: Experiments a profile leaves out unless named (``--only``), each with the reason (its cost, or a
#: budget at which it decides nothing): ``params/profiles.yaml``.
LEFT_OUT_OF: dict[str, dict[str, str]] = {}
#: The profile that runs every notebook, ``ON_REQUEST`` ones included (CI's "Run All" check).
EVERY_NOTEBOOK_PROFILE = "smoke"
#: Parameters the runner always injects; every notebook must declare them in its ``parameters`` cell.
RUNNER_PARAMETERS = ("profile", "output_dir")
KERNEL_NAME = "python3"

#: Gives an experiment's declaration by name (``default_experiment``; tests pass their own).
ExperimentFor = Callable[[str], Experiment]


# --------------------------------------------------------------------------------------------- discovery
def discover_experiments(notebooks_dir: str | Path | None = None) -> list[str]:
    """Names of ``notebooks_dir/*.ipynb`` (not ``_*``) in the paper's order, then alphabetically."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    names = {p.stem for p in folder.glob("*.ipynb") if p.is_file() and not p.stem.startswith(("_", "."))}
    ordered = [n for n in PAPER_ORDER if n in names]
    return ordered + sorted(names - set(ordered))


#: The experiments found when resnetlib.reproduce was imported (the runner re-discovers at run time).
EXPERIMENTS: list[str] = discover_experiments()


def default_experiment(name: str) -> Experiment:
    """``resnetlib.experiments.NAME.EXPERIMENT``: the one object the runner reads (its declaration)."""
    module = importlib.import_module(f"resnetlib.experiments.{name}")
    experiment = getattr(module, "EXPERIMENT", None)
    if not isinstance(experiment, Experiment):
        raise AttributeError(f"module resnetlib.experiments.{name} declares no EXPERIMENT: add "
                             "EXPERIMENT = Experiment(params=Params, ...) at its bottom")
    return experiment


def params_file_for(name: str, profile: str, params_dir: str | Path | None = None) -> Path:
    """``params/NAME/PROFILE.yaml`` (below ``params_dir`` if given)."""
    return (Path(params_dir) if params_dir is not None else PARAMS_DIR) / name / f"{profile}.yaml"


def display_path(path: Path) -> str:
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
        hint = f" ({display_path(folder)} holds no params file)"
    else:
        hint = f" (no folder {display_path(folder)})"
    return f"no params file for profile '{profile}': {display_path(params_path)} is missing{hint}"


def _notebook_parameters(notebook: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The parameters the notebook's ``parameters`` cell assigns (papermill's view), or the problem."""
    import papermill

    try:
        nb_params = papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # unreadable notebook
        return None, f"{display_path(notebook)}: cannot read its parameters: {type(exc).__name__}: {exc}"
    if not nb_params:
        return None, f"{display_path(notebook)} has no cell tagged 'parameters'"
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
                          f"(parameters of {display_path(notebook)}: {', '.join(valid)})")
    return errors


def _runner_key_problems(name: str, profile: str, data: dict[str, Any], nb_params: dict[str, Any],
                         shown: str, notebook: Path, force: bool) -> list[str]:
    """What the runner injects must be declared by the notebook and must not be set by the params file."""
    needed = list(RUNNER_PARAMETERS) + (["force"] if force else [])
    errors = [f"{display_path(notebook)}: its parameters cell does not assign '{key}', which the runner injects"
              for key in needed if key not in nb_params]
    if "output_dir" in data:
        errors.append(f"{shown}: 'output_dir' is set by the runner (reports/<profile>/{name}/); remove it")
    if "profile" in data and data["profile"] != profile:
        errors.append(f"{shown}: profile: {data['profile']!r} contradicts the profile being run ('{profile}')")
    return errors


def _validated(model: type, profile: str, data: dict[str, Any], nb_params: dict[str, Any], shown: str,
               force: bool) -> tuple[Any, list[str]]:
    """The experiment's typed ``Params`` from ``data``, or what it rejects (types, ranges, keys the notebook has
    but Params lacks); keys unknown to the notebook are reported by :func:`_unknown_keys`."""
    candidate = {k: v for k, v in data.items() if k in nb_params and k != "output_dir"}
    candidate["profile"] = profile
    if force:
        candidate["force"] = True
    try:
        return validate(model, candidate, source=shown), []
    except ConfigError as exc:
        return None, [str(exc)]


def _read_one(name: str, profile: str, notebook: Path, params_path: Path
              ) -> tuple[tuple[dict[str, Any], dict[str, Any]] | None, list[str]]:
    """(the params file's values, the notebook's parameters), or the problems found reading them."""
    if not params_path.is_file():
        return None, [_missing_params_file(params_path, profile)]
    try:
        data = load_yaml(params_path)
    except ConfigError as exc:
        return None, [str(exc)]
    nb_params, problem = _notebook_parameters(notebook)
    if nb_params is None:
        return None, [problem or ""]
    return (data, nb_params), []


def _check_one(name: str, profile: str, data: dict[str, Any], nb_params: dict[str, Any], shown: str,
               notebook: Path, model: type, force: bool) -> tuple[Any, list[str]]:
    """The validated ``Params`` of one experiment's parameters (file + ``--set``), or every problem found."""
    errors = _runner_key_problems(name, profile, data, nb_params, shown, notebook, force)
    errors += _unknown_keys(data, nb_params, shown, notebook)
    params, model_errors = _validated(model, profile, data, nb_params, shown, force)
    errors += model_errors
    return (None if errors else params), errors


@dataclasses.dataclass(frozen=True)
class Profile:
    """A validated profile: per selected experiment (in run order) what to inject into its notebook, its
    typed parameters and declaration, the ``--set`` items applied to it; the data roots given
    (``--data``/``$RESNETLIB_DATA_ROOTS``) and every data root that does not hold its data set."""

    name: str
    inject: dict[str, dict[str, Any]]
    params: dict[str, Any]
    experiments: dict[str, Experiment]
    overrides: dict[str, list[str]]
    data_roots: dict[str, str]
    data_problems: list[str]

    def applied(self) -> dict[str, list[str]]:
        """``{--set item: [experiments it was applied to]}`` (for the log, results.json and the index)."""
        out: dict[str, list[str]] = {}
        for name, items in self.overrides.items():
            for item in items:
                out.setdefault(item, []).append(name)
        return out


def _problem_block(name: str, errors: list[str]) -> str:
    return f"[{name}]\n  " + "\n  ".join(e.replace("\n", "\n  ") for e in errors)


def _raise_problems(profile: str, problems: list[str]) -> None:
    if problems:
        n = len(problems)
        raise ConfigError(f"profile '{profile}': {n} experiment{'s' if n > 1 else ''} with invalid parameters "
                          f"(nothing was run):\n" + "\n".join(problems))


def _with_data_root(params: Any, data: dict[str, Any], experiment: Experiment, roots: dict[str, str],
                    set_keys: set[str]) -> dict[str, Any]:
    """``data`` with ``data_root`` from ``--data`` when the experiment reads that data set (an explicit
    ``--set data_root=...`` wins)."""
    key = experiment.data_set(params)
    if key in roots and "data_root" not in set_keys:
        return {**data, "data_root": roots[key]}
    return data


def _data_needs(profile: Profile) -> dict[str, tuple[str | None, str]]:
    """``{experiment: (data set it reads from disk or None, its data_root)}``; a loader that downloads a
    missing data set itself needs nothing on disk."""
    return {name: (None if downloads(params) else profile.experiments[name].data_set(params), params.data_root)
            for name, params in profile.params.items()}


def _read_all(profile: str, selected: list[str], notebooks_dir: Path, params_dir: str | Path | None
              ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """``{experiment: (its params file's values, its notebook's parameters)}``; every problem at once."""
    read, problems = {}, []
    for name in selected:
        got, errors = _read_one(name, profile, notebooks_dir / f"{name}.ipynb",
                                params_file_for(name, profile, params_dir))
        if errors:
            problems.append(_problem_block(name, errors))
        else:
            read[name] = got
    _raise_problems(profile, problems)
    return read


def _declarations(profile: str, names: Iterable[str], experiment_for: ExperimentFor) -> dict[str, Experiment]:
    """Each experiment's declaration (``EXPERIMENT``); every module that lacks one at once."""
    found, problems = {}, []
    for name in names:
        try:
            found[name] = experiment_for(name)
        except Exception as exc:
            problems.append(_problem_block(name, [f"cannot load its declaration: {type(exc).__name__}: {exc}"]))
    _raise_problems(profile, problems)
    return found


def _fitting(overrides: Iterable[Any], applied: list[str], errors: list[str]) -> list[str]:
    """The ``--set`` items applied to an experiment, less those its validation calls unknown: a key of
    another member of a tagged union (``train.data.crop`` exists for class folders, not for CIFAR data)."""
    text = "\n".join(errors)
    misfits = {o.text for o in overrides if f"unknown parameter '{o.key}'" in text}
    return [t for t in applied if t not in misfits]


def _check_taken(overrides: Iterable[Any], applied: Mapping[str, list[str]]) -> None:
    """Every ``--set`` item must apply to a selected experiment (after the union members were told apart)."""
    taken = {text for texts in applied.values() for text in texts}
    lost = [o.text for o in overrides if o.text not in taken]
    if lost:
        raise ConfigError(f"--set {', '.join(lost)}: no selected experiment has this key for its data "
                          "(e.g. train.data.crop is a class-folder setting); select experiments with --only")


def load_profile(
    profile: str,
    only: Iterable[str] | None = None,
    *,
    force: bool = False,
    set_items: Iterable[str] | None = None,
    data_items: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    notebooks_dir: str | Path | None = None,
    params_dir: str | Path | None = None,
    experiment_for: ExperimentFor | None = None,
) -> Profile:
    """Read and validate every selected experiment's params file, ``--set`` and ``--data`` before anything runs.

    Raises one ConfigError listing every problem of every experiment: a missing params file, a key that is
    not a parameter of the notebook (with the closest valid name), a value the experiment's ``Params``
    rejects, a ``--set`` key no selected experiment has, a malformed ``--data`` item. Data roots that do not
    hold their data set are returned in ``data_problems`` (the caller refuses to run; ``--plan`` shows them).
    """
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    experiments = discover_experiments(notebooks_dir)
    if not experiments:
        raise ConfigError(f"no notebooks found in {display_path(notebooks_dir)}")
    overrides, roots = parse_set(set_items), parse_data_roots(data_items, environ)
    read = _read_all(profile, _select(only, experiments, profile), notebooks_dir, params_dir)
    declared = _declarations(profile, read, experiment_for or default_experiment)
    merged, applied = apply_overrides(overrides, {n: e.params for n, e in declared.items()},
                                      {n: data for n, (data, _) in read.items()})
    set_keys = {o.key for o in overrides}

    inject, validated, problems = {}, {}, []
    for name, (_, nb_params) in read.items():
        shown = display_path(params_file_for(name, profile, params_dir)) + (" with --set" if applied[name] else "")
        check = functools.partial(_check_one, name, profile, nb_params=nb_params, shown=shown,
                                  notebook=notebooks_dir / f"{name}.ipynb", model=declared[name].params, force=force)
        data = merged[name]
        params, errors = check(data=data)
        fitting = _fitting(overrides, applied[name], errors)
        if fitting != applied[name]:  # without keys of another union member (train.data.crop on CIFAR data)
            applied[name] = fitting
            data = apply_overrides([o for o in overrides if o.text in fitting], {name: declared[name].params},
                                   {name: read[name][0]})[0][name]
            params, errors = check(data=data)
        if params is not None:  # then the data root of its data set, and once more
            data = _with_data_root(params, data, declared[name], roots, set_keys)
            params, errors = check(data=data)
        if errors:
            problems.append(_problem_block(name, errors))
        else:
            inject[name], validated[name] = {k: v for k, v in data.items() if k != "output_dir"}, params
    _raise_problems(profile, problems)
    _check_taken(overrides, applied)
    loaded = Profile(profile, inject, validated, {n: declared[n] for n in inject}, applied, roots, [])
    return dataclasses.replace(loaded, data_problems=data_root_problems(_data_needs(loaded)))


def validate_profile(
    profile: str,
    only: Iterable[str] | None = None,
    *,
    force: bool = False,
    notebooks_dir: str | Path | None = None,
    params_dir: str | Path | None = None,
    experiment_for: ExperimentFor | None = None,
) -> dict[str, dict[str, Any]]:
    """``{name: parameters from params/NAME/PROFILE.yaml}`` in run order, every params file checked
    (:func:`load_profile` without ``--set``/``--data`` and without checking data roots)."""
    return load_profile(profile, only, force=force, notebooks_dir=notebooks_dir, params_dir=params_dir,
                        experiment_for=experiment_for, environ={}).inject


def not_run_in(profile: str, ran: Iterable[str]) -> list[dict[str, str]]:
    """What the index lists under "not run in this profile": each left-out experiment that did not run this
    time, then the claims the profile does not train for, each with its reason (``params/profiles.yaml``)."""
    budget = BUDGETS.get(profile)
    if budget is None:
        return []
    ran = set(ran)
    return [{"what": name, "why": why} for name, why in budget.left_out.items() if name not in ran] + [
        {"what": c.claims, "why": c.why} for c in budget.claims_not_run]


BUDGETS.update(load_budgets())
LEFT_OUT_OF.update({name: dict(b.left_out) for name, b in BUDGETS.items()})
