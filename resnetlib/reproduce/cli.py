"""The options of ``resnetlib reproduce`` and its entry point (the top-level CLI adds them as a subcommand)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, one_line
from ..paths import REPORTS_DIR
from . import profile as profiles
from .data_roots import DATA_SETS, ENV_VAR

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``resnetlib reproduce`` (the CLI's subcommand calls :func:`main` with the result)."""
    parser.add_argument("--profile", default="cpu",
                        help="params/NAME/PROFILE.yaml to use: smoke, cpu, paper, or your own (default: cpu)")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help="run only these experiments (see --list)")
    parser.add_argument("--data", nargs="+", metavar="NAME=DIR", default=None,
                        help=f"data roots, applied to every experiment reading that data set (data sets: "
                        f"{', '.join(DATA_SETS)}); also ${ENV_VAR}='cifar10=DIR,imagenet=DIR' (--data wins)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set_items",
                        help="override a parameter of every selected experiment that has it, e.g. "
                        "--set train.optim.iterations=2000 (repeatable; recorded in results.json and the index)")
    parser.add_argument("--plan", action="store_true",
                        help="print what would run (runs, cached runs, estimated time, disk) and train nothing")
    parser.add_argument("--force", action="store_true",
                        help="retrain even where a cached run with the same configuration exists")
    parser.add_argument("--reports-dir", type=Path, default=None,
                        help="root of the reports; PROFILE/ is created inside "
                        f"(default: {profiles.display_path(REPORTS_DIR)})")
    parser.add_argument("--jobs", type=_jobs, default=1, metavar="N|auto",
                        help="train up to N runs at once, each in its own process (CPU: cores/N threads each; "
                        "CUDA: N processes share the card) before the notebooks run; auto: one per core on a "
                        "CPU, the measured packing factor on CUDA (default: 1)")
    parser.add_argument("--list", action="store_true",
                        help="list the experiments and their params files, run nothing")
    from ..launchers import add_launcher_arguments

    return add_launcher_arguments(parser)


def _jobs(text: str) -> int | str:
    """argparse type of ``--jobs``: ``auto`` or an integer >= 1."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 1 or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _list(profile: str) -> int:
    """``--list``: every experiment with its notebook and params files."""
    experiments = profiles.discover_experiments()
    if not experiments:
        print(f"no notebooks in {profiles.display_path(profiles.NOTEBOOKS_DIR)}")
        return 0
    width = max(len(n) for n in experiments)
    for name in experiments:
        folder = profiles.PARAMS_DIR / name
        files = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
        mark = "" if profiles.params_file_for(name, profile).is_file() else f"  (no {profile}.yaml)"
        print(f"{name:<{width}}  notebooks/{name}.ipynb  params/{name}/: {', '.join(files) or 'none'}{mark}")
    return 0


def main(args: argparse.Namespace) -> int:
    """Run ``resnetlib reproduce``; returns the exit status (0 ok, 1 a notebook failed, 2 bad parameters)."""
    from . import print_plan, run_profile

    if getattr(args, "list", False):
        return _list(args.profile)
    from ..launchers import images_per_second_from_args, launcher_from_args

    common = dict(only=args.only, force=args.force, set_items=getattr(args, "set_items", None),
                  data_items=getattr(args, "data", None), jobs=getattr(args, "jobs", 1))
    try:
        launcher = launcher_from_args(argparse.Namespace(**{**vars(args), "jobs": 1}))  # --jobs: resolved later
        if getattr(args, "plan", False):
            return print_plan(args.profile, **common, launcher=launcher,
                              images_per_second=images_per_second_from_args(args))
        outcomes = run_profile(args.profile, reports_dir=args.reports_dir, **common, launcher=launcher)
    except ConfigError as exc:
        print(f"resnetlib reproduce: {one_line(exc)}", file=sys.stderr)
        return 2
    return 0 if all(o.ok for o in outcomes) else 1
