"""Command line: ``resnetlib train|reproduce|models`` (also ``python -m resnetlib``)."""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError

__all__ = ["main"]


def _train(args: argparse.Namespace) -> int:
    from .train import fit, load_config

    config = load_config(args.params, args.set)  # validated before any data is read
    result = fit(config, args.run_dir, resume=args.resume)
    print(f"run folder: {result.run_dir}")
    for key in ("final_train_error", "final_val_error", "final_test_error"):
        if result.summary.get(key) is not None:
            print(f"{key}: {result.summary[key]:.2f}%")
    return 0


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
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    train.set_defaults(func=_train)

    listing = sub.add_parser("models", help="list the registered networks")
    listing.set_defaults(func=_models)

    rep = sub.add_parser("reproduce", help="run every experiment notebook and render reports/<profile>/")
    from . import reproduce

    reproduce.add_arguments(rep)
    rep.set_defaults(func=_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DataNotFoundError
    from .train import NonFiniteLossError, RunFolderError
    from .train.checkpoint import CheckpointError

    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"resnetlib: {exc}", file=sys.stderr)
        return 2
    except (DataNotFoundError, CheckpointError, RunFolderError, NonFiniteLossError) as exc:
        print(f"resnetlib: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
