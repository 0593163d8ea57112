"""Command line: ``resnetlib train|reproduce|models`` (also ``python -m resnetlib``)."""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError, one_line

__all__ = ["main", "one_line", "run_reporting_errors"]


def _train(args: argparse.Namespace) -> int:
    from .train import fit

    config = _train_config(args)  # validated before any data is read
    result = fit(config, args.run_dir, resume=args.resume, allow_config_change=args.allow_config_change)
    print(f"run folder: {result.run_dir}")
    for key in ("final_train_error", "final_val_error", "final_test_error"):
        if result.summary.get(key) is not None:
            print(f"{key}: {result.summary[key]:.2f}%")
    return 0


def _train_config(args: argparse.Namespace):
    """``--params`` + ``--set``; on ``--resume`` without ``--params``, the run folder's config.yaml (the
    truth of a run) + ``--set``."""
    from pathlib import Path

    from .train import load_config

    if not (args.resume and not args.params):
        return load_config(args.params, args.set)
    if not args.run_dir:
        raise ConfigError("--resume needs --run-dir naming the run folder to continue")
    saved = Path(args.run_dir) / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"--resume: {saved} not found; name the folder of a started run with --run-dir")
    return load_config(saved, args.set)


def _models(_args: argparse.Namespace) -> int:
    from . import models

    print("\n".join(models.names()))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from . import reproduce

    return reproduce.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resnetlib", description="Reproduce 'Deep Residual Learning for Image Recognition' (He et al., 2015)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one network from a params file")
    train.add_argument("--params", help="YAML params file (a _base.yaml beside it is merged underneath)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter, e.g. --set optim.lr=0.01 (repeatable)")
    train.add_argument("--run-dir", help="folder for config, metrics, checkpoints (default runs/<model>-<time>)")
    train.add_argument("--resume", action="store_true",
                       help="continue --run-dir from its checkpoint (with its config.yaml unless --params)")
    train.add_argument("--allow-config-change", action="store_true",
                       help="on --resume, accept settings that differ from config.yaml (recorded in it)")
    train.set_defaults(func=_train)

    listing = sub.add_parser("models", help="list the registered networks")
    listing.set_defaults(func=_models)

    rep = sub.add_parser("reproduce", help="run every experiment notebook and render reports/<profile>/")
    from . import reproduce

    reproduce.add_arguments(rep)
    rep.set_defaults(func=_reproduce)
    return parser


#: Exit statuses: a run that started and failed, and a bad input (refused before any work).
FAILED_RUN = 1
BAD_INPUT = 2


#: The fix, for errors whose message (written where the error is found) does not say it.
FIXES = {"DataCorruptError": "; download the data set again, or point data.root at a good copy"}


def user_errors() -> dict[type[BaseException], int]:
    """Every error a user can cause, with its exit status: 2 for a bad input, 1 for a run that failed."""
    from .data import DataCorruptError, DataNotFoundError
    from .train import NonFiniteLossError, RunFolderError
    from .train.checkpoint import CheckpointError
    from .train.lock import RunLockedError

    return {
        ConfigError: BAD_INPUT, DataNotFoundError: BAD_INPUT, DataCorruptError: BAD_INPUT,
        RunFolderError: BAD_INPUT, CheckpointError: BAD_INPUT, NonFiniteLossError: FAILED_RUN,
        RunLockedError: FAILED_RUN,
    }


def run_reporting_errors(func, *args) -> int:
    """``func(*args)``, with a user error printed as one line (no traceback) and its exit status."""
    errors = user_errors()
    try:
        return func(*args)
    except tuple(errors) as exc:
        status = next(code for cls, code in errors.items() if isinstance(exc, cls))
        fix = FIXES.get(type(exc).__name__, "")
        print(f"resnetlib: {type(exc).__name__}: {one_line(exc)}{fix}", file=sys.stderr)
        return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
