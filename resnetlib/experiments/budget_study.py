"""When does each claim of the paper emerge on a CPU? The same claims, judged the same way, at several budgets.

Every setting (training iterations, image size, training subset, batch) trains the CIFAR-style nets of
Sec. 4.2 that the cpu-scale claims need (plain and residual nets of two depths, options B and C at the
shallow depth) with several seeds, then judges each claim exactly as its own notebook does, by calling
that notebook's experiment module with the setting's ``train`` section:

- ``cifar_degradation``: Fig. 1 / Fig. 6 left (plain degradation), Fig. 6 middle and Table 6's trend
  (the deeper ResNet ends lower, training and test error), ResNet beats plain at equal depth;
- ``layer_responses``: Fig. 7 (ResNet responses smaller than plain, deeper ResNet smaller), under both
  std definitions;
- ``shortcut_options``: Table 3 at the shallow depth (options A, B, C each beat plain; the A < B < C
  steps, whose verdict is reserved to the paper's scale but whose interval is still shown).

The learning rate steps at 50% and 75% of each budget (the paper's 32k and 48k of 64k). The result is one
row per (setting, claim): the claim's mean effect, its 95% interval and verdict, beside the setting's cost
(core-hours of training on this machine), so a reader sees at which budget each claim emerges, or that it does
not within what was tried. The profiles ``cpu`` and ``cpu-long`` are sized from it (README).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import Field, model_validator

from ..claims import Claim
from ..claims.budget import rejudge_study
from ..claims.emergence import budget_axis, control_rows, emergence, join_readings
from ..config import StrictModel, deep_merge
from ..paths import NOTEBOOKS_DIR
from ..train import TrainConfig
from . import cifar_degradation, layer_responses, shortcut_options
from .base import Measured, Outcome, portable_paths, run_experiment
from .cost import run_cost
from .training import TrainingParams, data_source
from .training import final_errors as final_errors_by
from .declaration import Experiment

#: Why the study lists no claims of its own (shown on the index page in place of a claims table).
NO_CLAIMS = ("none of its own: it judges the claims of cifar_degradation, layer_responses and shortcut_options "
             "at each budget (its effects and emergence tables)")
#: Training images of Fashion-MNIST (the study's data set): the default training subset is all of them.
FULL_TRAIN_IMAGES = 60_000
#: The experiments whose claims the study judges; a setting may judge a subset (the long settings of the
#: depth study train only the nets of Fig. 1, 6 and 7, not the shallow Table 3 options).
JUDGED = ("cifar_degradation", "layer_responses", "shortcut_options")
Judged = Literal["cifar_degradation", "layer_responses", "shortcut_options"]


class Setting(StrictModel):
    """One budget: how long, on how large images, on how many of them, in what batches."""

    iterations: int = Field(..., ge=8, description="SGD iterations; lr /10 at 50% and 75% of them")
    image_size: int | None = Field(None, ge=8, description="images resized to this side; None = the data's own")
    train_size: int | None = Field(None, ge=64, description="training subset; None = train.data.train_size")
    batch_size: int = Field(128, ge=8, description="paper: 128")
    amp: Literal["off", "bf16", "auto"] | None = Field(
        None, description="precision control: off = fp32 (rounding in a deep residual stream); None = train.amp")
    depths: cifar_degradation.CifarDepths | None = Field(
        None, min_length=2, description="CIFAR depths of this setting (e.g. [20, 56, 110]); None = the study's")
    experiments: list[Judged] = Field(default_factory=lambda: list(JUDGED), min_length=1,
                                      description="whose claims this setting judges (and so which nets it trains)")

    def label(self) -> str:
        size = f"{self.image_size}px" if self.image_size else "native"
        subset = f", {self.train_size // 1000}k images" if self.train_size and self.train_size >= 1000 else (
            f", {self.train_size} images" if self.train_size else "")
        batch = f", batch {self.batch_size}" if self.batch_size != 128 else ""
        precision = {None: "", "off": ", fp32", "bf16": ", bf16", "auto": ""}[self.amp]
        depths = f", depths {'/'.join(map(str, self.depths))}" if self.depths else ""
        return f"{self.iterations} it, {size}{subset}{batch}{precision}{depths}"

    def is_control(self) -> bool:
        """A control (another precision, or a training subset), not a point on the budget axis: its effects
        are shown beside the budgets but never count toward emergence or the replication rule."""
        return self.amp is not None or self.train_size is not None

    def padding(self, native: int) -> int:
        """The crop padding: the paper's 4 px of 32 (one eighth of the side), rounded half up."""
        return int((self.image_size or native) / 8 + 0.5)


class NotRun(StrictModel):
    """A setting the study planned and did not run, and why (its cost, or a trend that already answers):
    a reader sees where the study stopped and what it would take to go on (issue 20)."""

    setting: Setting
    why: str = Field(..., min_length=10, description="the reason, with the cost it would take")


def _default_settings() -> list[Setting]:
    return [Setting(iterations=12, image_size=16), Setting(iterations=24, image_size=16)]


class Params(TrainingParams):
    """The nets, seeds and settings of the study; ``train`` holds what every setting shares."""

    settings: list[Setting] = Field(default_factory=_default_settings, min_length=1,
                                    description="the budgets, cheapest first")
    depths: cifar_degradation.CifarDepths = Field(default_factory=lambda: [20, 32],
                                                  description="shallow and deep CIFAR depths (paper: 20, 56)")
    evaluations: int = Field(8, ge=4, description="evaluations per run (>= 2 in the last lr phase's 2nd half)")
    native_size: int = Field(28, ge=8, description="the data set's own image side (Fashion-MNIST 28, CIFAR-10 32)")
    not_run: list[NotRun] = Field(default_factory=list,
                                  description="settings planned but not run, each with its reason (nothing trains)")
    committed: str = Field("", description="folder of a committed study (effects.csv, costs.csv, ...): render its "
                                           "tables for these settings instead of training; empty: train")

    @model_validator(mode="after")
    def _two_depths(self):
        if len(self.depths) != 2:
            raise ValueError(f"depths must be two CIFAR depths (shallow, deep); got {self.depths}")
        return self

    @model_validator(mode="after")
    def _each_label_once(self):
        labels = [s.label() for s in [*self.settings, *(n.setting for n in self.not_run)]]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"settings {repeated} are listed twice (in settings or not_run); each label names "
                             "one setting: remove the repeat")
        return self

    def not_run_table(self) -> pd.DataFrame:
        """The settings planned and not run, with their reasons (``not_run.csv`` beside the study)."""
        return pd.DataFrame([{"setting": n.setting.label(), "iterations": n.setting.iterations,
                              "image_size": n.setting.image_size or self.native_size,
                              "experiments": ", ".join(n.setting.experiments), "why": n.why} for n in self.not_run],
                            columns=["setting", "iterations", "image_size", "experiments", "why"])

    def setting_train(self, setting: Setting) -> dict[str, Any]:
        """The ``train`` section of one setting: the shared ``train`` with the setting's budget and data."""
        data = {"image_size": setting.image_size, "padding": setting.padding(self.native_size)}
        if setting.train_size is not None:
            data["train_size"] = setting.train_size
        optim = {"iterations": setting.iterations, "batch_size": setting.batch_size, "milestones": [0.5, 0.75]}
        every = max(1, setting.iterations // self.evaluations)
        precision = {"amp": setting.amp} if setting.amp is not None else {}
        return deep_merge(self.train, {"data": data, "optim": optim, "eval_every": every, **precision})

    def sub_params(self, module, setting: Setting, **fields) -> TrainingParams:
        """``module.Params`` (an experiment whose claims the study judges) at ``setting``."""
        common = {k: getattr(self, k) for k in ("profile", "runs_dir", "data_root", "device", "force")}
        return module.Params.model_validate({**common, "seeds": self.seeds, "train": self.setting_train(setting),
                                             **fields})

    def experiments(self, setting: Setting) -> dict[str, TrainingParams]:
        """The judged experiments' Params at ``setting`` (only those the setting names)."""
        depths = setting.depths or self.depths
        build = {
            "cifar_degradation": lambda: self.sub_params(cifar_degradation, setting, depths=depths),
            "layer_responses": lambda: self.sub_params(layer_responses, setting, plain_depths=self.depths,
                                                       resnet_depths=self.depths),
            "shortcut_options": lambda: self.sub_params(shortcut_options, setting, depth=depths[0]),
        }
        return {name: build[name]() for name in JUDGED if name in setting.experiments}


def planned_runs(params: Params) -> list[TrainConfig]:
    """Every configuration the study trains, cheapest setting first, without repeats (the run queue of
    ``reproduce --jobs`` trains them first)."""
    unique: dict[str, TrainConfig] = {}
    for setting in params.settings:
        for sub in params.experiments(setting).values():
            module = sys.modules[type(sub).__module__]  # the experiment whose claims ``sub`` parameterises
            for config in module.planned_runs(sub):
                unique.setdefault(config.model_dump_json(), config)
    return list(unique.values())


# ------------------------------------------------------------------------------------------------ measuring
def setting_claims(params: Params, setting: Setting) -> tuple[list[Claim], pd.DataFrame]:
    """The statements of the experiments ``setting`` judges (each by its own module), and the training
    curves of every run they used."""
    subs = params.experiments(setting)
    claims: list[Claim] = []
    runs: list[pd.DataFrame] = []
    if "cifar_degradation" in subs:
        deg = subs["cifar_degradation"]
        curves = cifar_degradation.train_all(deg)
        claims += [c for c in cifar_degradation.claims_from(deg, curves) if c.kind == "statement"]
        runs.append(curves.assign(option=curves.kind.map({"plain": "plain", "resnet": "A"})))
    if "layer_responses" in subs:
        resp = subs["layer_responses"]
        responses, response_curves = layer_responses.measure_responses(resp)
        claims += layer_responses.claims_from(resp, responses, response_curves)
        runs.append(response_curves.assign(option=response_curves.kind.map({"plain": "plain", "resnet": "A"})))
    if "shortcut_options" in subs:
        opts = subs["shortcut_options"]
        option_curves, _, _ = shortcut_options.train_all(opts)
        claims += [shortcut_options.beats_plain_claim(opts, option_curves),
                   *shortcut_options.order_claims(opts, option_curves,
                                                  final_errors_by(option_curves, by=("option",)))]
        runs.append(option_curves)
    return claims, pd.concat(runs).drop_duplicates(subset=["run_dir", "iteration"])


def core_hours(curves: pd.DataFrame) -> float:
    """CPU core-hours (or GPU-hours) of training of the distinct runs in ``curves``: each run's CPU seconds
    where the run queue measured them (``cost.json``: right on a shared machine), else its ``train_seconds``
    times the compute threads it had (``experiments.cost``), so a run queue of two 1-thread jobs and one
    2-thread job count alike; on a 2-core machine the wall time is about half."""
    return sum(_run_seconds(Path(d)) for d in curves.run_dir.unique()) / 3600.0


def _run_seconds(run_dir: Path) -> float:
    cost = run_cost(run_dir)
    return cost["cpu_seconds"] or cost["thread_seconds"]


def claim_rows(params: Params, setting: Setting, claims: list[Claim], hours: float) -> list[dict[str, Any]]:
    cost = {"setting": setting.label(), "iterations": setting.iterations,
            "image_size": setting.image_size or params.native_size,
            "train_size": params.setting_train(setting)["data"].get("train_size") or FULL_TRAIN_IMAGES,
            "batch_size": setting.batch_size, "core_hours": round(hours, 4), "control": setting.is_control()}
    fields = ("id", "ref", "what", "verdict", "n_seeds", "effect", "ci_low", "ci_high", "margin", "reason",
              "ends_better")
    return [{**cost, **{f: getattr(c, f) for f in fields}} for c in claims]


def measure(params: Params) -> Measured:
    """Train (or find in the run cache) every setting's runs and judge its claims; with ``committed``, read
    the committed study's tables instead (``committed_measured``)."""
    if params.committed:
        return committed_measured(params)
    rows, curves, costs = [], [], []
    for setting in params.settings:
        claims, runs = setting_claims(params, setting)
        hours = core_hours(runs)
        rows += claim_rows(params, setting, claims, hours)
        curves.append(runs.assign(setting=setting.label()))
        costs.append({"setting": setting.label(), "runs": runs.run_dir.nunique(), "core_hours": round(hours, 3),
                      "median_images_per_s": round(float(runs.images_per_s.median()), 1),
                      "cpu": _machine(runs.run_dir.iloc[0])["device_name"]})
    effects = judged_across_budgets(pd.DataFrame(rows), params.native_size)
    curves = pd.concat(curves, ignore_index=True)
    return Measured(
        tables={"effects": effects, "emergence": emergence(budget_axis(effects)), "costs": pd.DataFrame(costs),
                "per_seed": per_seed_rows(params), "not_run": params.not_run_table(),
                "final_errors": final_errors_by(curves, by=("setting", "option", "depth"))},
        dataset=params.family().name, data_source=data_source(curves.run_dir.iloc[0]), seeds=params.seeds,
        scale=f"{len(params.settings)} settings x {len(params.seeds)} seeds; " + params.family().scale_text(),
        extra={"machine": _machine(curves.run_dir.iloc[0]), "no_claims": NO_CLAIMS},
    )


# ------------------------------------------------------------------------ verdicts across the study's budgets
def judged_across_budgets(effects: pd.DataFrame, native_size: int) -> pd.DataFrame:
    """``effects`` with the ends-better rule applied across the study's own budgets (``claims.budget``).

    Each setting judges its claims alone; for a claim about which net *ends* better (Fig. 6 middle, Table 6's
    trend, Fig. 7's deeper ResNet) a contradiction at one budget may only be the deeper net not having caught
    up yet. So ``verdict`` is the study's verdict: such a contradiction stands only where every budget >= 3x
    larger on the budget axis replicates it, else it is not measurable ("still converging: ..."). A control
    (fp32, a training subset) has no larger budget of its own, so its contradictions of those claims do not
    stand either. The setting's own test stays in ``own_verdict`` and ``own_reason``; re-judging starts from
    them, so adding a setting can change an earlier setting's verdict in either direction."""
    table = effects.copy()
    if "own_verdict" in table.columns:
        table["verdict"], table["reason"] = table["own_verdict"], table["own_reason"]
    else:
        table["own_verdict"], table["own_reason"] = table["verdict"], table["reason"]
    if "ends_better" not in table.columns:
        raise ValueError("the study's effects have no ends_better column (a table written before the study "
                         "re-judged its own rows): add it, True for the claims about which net ends better "
                         "(their Claim.ends_better), then judge again")
    ends_better = set(table.loc[table["ends_better"].fillna(False).astype(bool), "id"])
    control = control_rows(table)
    parts = [rejudge_study(table[~control], ends_better, native_size)]
    parts += [rejudge_study(part, ends_better, native_size) for _, part in table[control].groupby("setting")]
    judged = pd.concat(parts).loc[table.index]
    changed = judged["verdict"] != judged["own_verdict"]
    judged.loc[changed, "reason"] = (judged["reason"] + "; this setting's own test: " + judged["own_verdict"]
                                     + " (" + judged["own_reason"].astype(str) + ")")[changed]
    judged["ends_better"] = judged["id"].isin(ends_better)  # a row merged from an older table: its id's flag
    return judged


def _machine(run_dir: str) -> dict[str, Any]:
    env = json.loads((Path(run_dir) / "environment.json").read_text())
    return {k: env.get(k) for k in ("device_name", "cpu", "amp", "torch", "host")}


# ------------------------------------------------------------------------------------------- per-seed values
#: The committed per-seed values of the study (one row per net, seed and setting), beside its report.
PER_SEED_FILE = Path("reports/reference/budget_study/per_seed.csv")


def per_seed_rows(params: Params) -> pd.DataFrame:
    """One row per finished run of every setting (net, seed, final training/test error, cost, machine, date),
    read from the run cache without training anything: what a session commits while a study is under way
    (``python -m resnetlib.experiments.budget_study``). Runs not finished yet are left out."""
    from ..train.runs import run_dir_for

    rows = []
    for setting in params.settings:
        for sub in params.experiments(setting).values():
            module = sys.modules[type(sub).__module__]
            for config in module.planned_runs(sub):
                run_dir = run_dir_for(config, params.runs_path())
                if (run_dir / "summary.json").is_file():
                    rows.append({"setting": setting.label(), **_run_row(run_dir)})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).drop_duplicates(subset=["setting", "run"])
    return table.astype({"image_size": "Int64"})  # native rows have none: keep the others integers


def _run_row(run_dir: Path) -> dict[str, Any]:
    """A finished run's final errors, its cost (thread-seconds; CPU seconds where the run queue measured
    them) and where and when it trained."""
    summary = json.loads((run_dir / "summary.json").read_text())
    env = json.loads((run_dir / "environment.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    finished = pd.Timestamp((run_dir / "summary.json").stat().st_mtime, unit="s", tz="UTC")
    return {
        "model": summary["model"], "seed": summary["seed"],
        "iterations": summary["iterations"], "image_size": config["data"].get("image_size"),
        "train_size": config["data"].get("train_size"), "amp": env.get("amp"),
        "final_train_error": summary["final_train_error"], "final_test_error": summary["final_test_error"],
        "train_seconds": summary["train_seconds"], **run_cost(run_dir), "cpu": (env.get("cpu") or {}).get("model"),
        "torch": env.get("torch"), "finished_utc": finished.strftime("%Y-%m-%d %H:%M"),
    }


# ---------------------------------------------------------------------------------- the committed study, rendered
#: The tables of a committed study that its report shows (``results.json`` names the data set).
COMMITTED_TABLES = ("effects", "costs", "final_errors", "per_seed")
#: The study's notebook (``render_committed`` executes it on the committed tables).
NOTEBOOK = NOTEBOOKS_DIR / "budget_study.ipynb"


def committed_measured(params: Params) -> Measured:
    """The study committed in ``params.committed``, as ``measure`` returns it, read from its tables without
    training: how its report is re-rendered after ``add_settings`` merged a setting trained in the background
    (the earlier settings' runs may be on another machine: each cost row names its CPU). Only ``params``'
    settings are shown, in their order; one that the committed study lacks is an error naming it."""
    folder = Path(params.committed)
    missing = [f"{n}.csv" for n in COMMITTED_TABLES if not (folder / f"{n}.csv").is_file()]
    missing += [] if (folder / "results.json").is_file() else ["results.json"]
    if missing:
        raise FileNotFoundError(f"committed = {str(folder)!r} is not a committed budget study: it has no "
                                f"{missing}; point it at reports/reference/budget_study, or set it empty to train")
    labels = [s.label() for s in params.settings]
    effects = judged_across_budgets(_reference_table(folder, "effects"), params.native_size)
    absent = [label for label in labels if label not in set(effects.setting)]
    if absent:
        raise ValueError(f"settings {absent} are not in {folder / 'effects.csv'}: train them and add them with "
                         "`python -m resnetlib.experiments.budget_study PARAMS --add LABEL`, or leave them out")
    effects = _in_order(effects, labels)
    results = json.loads((folder / "results.json").read_text())
    shown = portable_paths({"committed": str(folder)})["committed"]  # repo-relative where it is inside the repo
    per_seed = pd.read_csv(folder / "per_seed.csv", dtype={"image_size": "Int64", "train_size": "Int64"})
    return Measured(
        tables={"effects": effects, "emergence": emergence(budget_axis(effects)),
                "costs": _in_order(_reference_table(folder, "costs"), labels),
                "per_seed": per_seed[per_seed.setting.isin(labels)], "not_run": params.not_run_table(),
                "final_errors": _in_order(pd.read_csv(folder / "final_errors.csv"), labels)},
        dataset=results["dataset"], data_source=results["data_source"], seeds=params.seeds,
        scale=(f"{len(labels)} settings x {len(params.seeds)} seeds, read from the committed tables in {shown} "
               "(each cost row names the CPU that trained the setting)"),
        extra={"machine": results.get("machine"), "no_claims": NO_CLAIMS, "committed": shown},
    )


def _in_order(table: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The rows of ``table`` whose setting is one of ``labels``, in that order."""
    order = {label: i for i, label in enumerate(labels)}
    rows = table[table.setting.isin(order)]
    return rows.sort_values("setting", key=lambda c: c.map(order), kind="stable", ignore_index=True)


def render_committed(params_file: str | Path, folder: Path, *, timeout: int = 600) -> Path:
    """Re-render ``folder/budget_study.html`` (and its tables, figure and results.json) from the committed
    tables: the study's notebook executed by papermill with ``committed`` set, at the settings of
    ``params_file`` that the committed study holds, then rendered by nbconvert. Nothing trains. Returns the
    HTML's path."""
    import tempfile

    import papermill

    from ..config import load_yaml
    from ..report.render import render_html

    folder = Path(folder).resolve()
    data = load_yaml(params_file)
    params = Params.model_validate({**data, "profile": "cpu"})
    present = set(pd.read_csv(folder / "effects.csv").setting)
    settings = [s.model_dump(mode="json") for s in params.settings if s.label() in present]
    inject = {**data, "profile": "cpu", "settings": settings, "committed": str(folder), "output_dir": str(folder)}
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / NOTEBOOK.name
        papermill.execute_notebook(str(NOTEBOOK), str(executed), parameters=inject, kernel_name="python3",
                                   cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=timeout)
        return render_html(executed, folder / "budget_study.html")


# ------------------------------------------------------------------------- settings added to the committed study
def unfinished_runs(params: Params) -> list[str]:
    """The run folders that ``params``' settings need and the run cache has not finished."""
    from ..train.runs import run_dir_for

    folders = [run_dir_for(config, params.runs_path()) for config in planned_runs(params)]
    return [d.name for d in folders if not (d / "summary.json").is_file()]


def add_settings(params: Params, labels: list[str], folder: Path) -> pd.DataFrame:
    """Judge the settings of ``params`` named by ``labels`` from their finished runs and put them into the
    study committed at ``folder``: its effects, costs, emergence table and figure then hold the earlier
    settings (measured on another machine or day: each cost row names its CPU) beside the new ones, and its
    per-seed table every finished run of ``params``. A setting long enough to train for hours in the
    background (issue 20) is added this way when its last run finishes, without re-training the others.
    The verdicts are re-judged across every setting's budget (``judged_across_budgets``). Returns the merged
    effects. Nothing is trained: an unfinished run is an error that names it. ``render_committed`` then
    re-renders the HTML."""
    settings = {s.label(): s for s in params.settings}
    unknown = [label for label in labels if label not in settings]
    if unknown:
        raise ValueError(f"no setting labelled {unknown} in the params; their labels are {list(settings)}")
    chosen = params.model_copy(update={"settings": [settings[label] for label in labels]})
    missing = unfinished_runs(chosen)
    if missing:
        raise RuntimeError(f"{len(missing)} run(s) of {labels} are not finished in {params.runs_path()}: "
                           f"{missing}; train them first (resnetlib reproduce --only budget_study --jobs 2, or "
                           "let the background study finish), then add the settings again")
    measured = measure(chosen)
    merged = _merged(_reference_table(folder, "effects"), measured.tables["effects"], params)
    effects = judged_across_budgets(merged, params.native_size)
    effects.to_csv(folder / "effects.csv", index=False)
    for name in ("costs", "final_errors"):
        old = _reference_table(folder, name) if (folder / f"{name}.csv").is_file() else None
        new = measured.tables[name]
        (new if old is None else _merged(old, new, params)).to_csv(folder / f"{name}.csv", index=False)
    emergence(budget_axis(effects)).to_csv(folder / "emergence.csv", index=False)
    per_seed_rows(params).to_csv(folder / "per_seed.csv", index=False)
    params.not_run_table().to_csv(folder / "not_run.csv", index=False)
    from ..report import figures

    figures.budget_emergence(effects).savefig(folder / "emergence.png", dpi=72)
    return effects


def _reference_table(folder: Path, name: str) -> pd.DataFrame:
    """A committed table of the study; Fig. 7's readings, once two claims, joined as the notebook now
    judges them (``claims.emergence.join_readings``); a cost row without a CPU gets the study's machine."""
    table = pd.read_csv(folder / f"{name}.csv")
    if name == "effects":
        return join_readings(table)
    if name == "costs" and "cpu" not in table.columns:
        results = json.loads((folder / "results.json").read_text())
        table["cpu"] = (results.get("machine") or {}).get("device_name")
    return table


def _merged(old: pd.DataFrame, new: pd.DataFrame, params: Params) -> pd.DataFrame:
    """``old`` with the rows of ``new``'s settings replaced, in the order of ``params.settings``."""
    merged = pd.concat([old[~old.setting.isin(set(new.setting))], new], ignore_index=True)
    order = {s.label(): i for i, s in enumerate(params.settings)}
    return merged.sort_values("setting", key=lambda c: c.map(order).fillna(len(order)), kind="stable",
                              ignore_index=True)


def run(params: Params) -> Outcome:
    """The study's own claims are those of the other notebooks: the index counts them there, not here."""
    return run_experiment(params, measure, EXPERIMENT.claims)


#: This experiment as the runner reads it (resnetlib.experiments.declaration).
EXPERIMENT = Experiment(params=Params, measure=measure, claims=lambda p, m: [], planned_runs=planned_runs)


def main(argv: list[str] | None = None) -> None:
    """``python -m resnetlib.experiments.budget_study [PARAMS] [PER_SEED_CSV] [--add LABEL ...]``: write
    the per-seed table of every finished run of the study's settings; with ``--add``, also judge the settings
    so labelled and put them into the committed study (``add_settings``)."""
    import argparse

    from ..config import load_yaml

    parser = argparse.ArgumentParser(prog="python -m resnetlib.experiments.budget_study", description=main.__doc__)
    parser.add_argument("params", nargs="?", default="params/budget_study/cpu.yaml")
    parser.add_argument("per_seed", nargs="?", type=Path, default=PER_SEED_FILE)
    parser.add_argument("--add", nargs="+", metavar="LABEL", default=[],
                        help='settings to judge and add to the committed study, e.g. "10000 it, 16px"')
    parser.add_argument("--render", action="store_true",
                        help="re-render the committed study's HTML from its tables (done after --add anyway)")
    args = parser.parse_args(argv)
    params = Params.model_validate({**load_yaml(args.params), "profile": "cpu"})
    folder = args.per_seed.parent
    if args.add:
        effects = add_settings(params, args.add, folder)
        print(f"{effects.setting.nunique()} setting(s) in {folder}/effects.csv")
    if args.add or args.render:
        print(f"rendered {render_committed(args.params, folder)}")
    rows = per_seed_rows(params)
    args.per_seed.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.per_seed, index=False)
    print(f"{len(rows)} finished run(s) -> {args.per_seed}")


if __name__ == "__main__":
    main()
