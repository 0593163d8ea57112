"""Data roots in one place (``reproduce --data cifar10=DIR imagenet=DIR ...`` or ``$RESNETLIB_DATA_ROOTS``).

Every experiment reads at most one data set through its ``data_root`` parameter; which one its declaration
says (``Experiment.data_set``: by default ``train.data.name``, or a class-folder experiment's ``stand_in``). A root given here
becomes the ``data_root`` of every selected experiment that reads that data set, instead of a
``data_root`` in each params file. Before anything trains, every root a selected experiment will read (given
here, in its params file, or the default search path) is checked for the data set's on-disk layout; a
problem is one line naming the experiments that need the data set and how to fix it.

Precedence, later wins: the params file's ``data_root``, ``$RESNETLIB_DATA_ROOTS``, ``--data``, then an
explicit ``--set data_root=...``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError

__all__ = ["DATA_SETS", "ENV_VAR", "DataSet", "data_root_problems", "parse_data_roots"]

#: The environment variable holding roots as ``--data`` does: ``cifar10=/data/cifar,imagenet=/data/ilsvrc``.
ENV_VAR = "RESNETLIB_DATA_ROOTS"


def _cifar10(root: Path | None) -> str | None:
    from ..data.cifar10 import FILES, cifar10_folder

    folder = cifar10_folder(root)
    missing = [f for f in FILES if not (folder / f).is_file()]
    return f"{folder} lacks {', '.join(missing)}" if missing else None


def _fashion_mnist(root: Path | None) -> str | None:
    """Fashion-MNIST is searched for as its loader does (with no root: $RESNETLIB_DATA, ./data and the
    system's data sets, e.g. Debian's /usr/share/datasets/fashion-mnist)."""
    from ..data.fashion_mnist import candidate_folders, find_fashion_mnist

    if find_fashion_mnist(root):
        return None
    return f"no *-ubyte.gz files of Fashion-MNIST in {', '.join(map(str, candidate_folders(root)))}"


def _entries(*paths: str) -> Callable[[Path | None], str | None]:
    """A layout check: every one of ``paths`` exists below the root."""
    def check(root: Path | None) -> str | None:
        from ..data.common import resolve_root

        root = resolve_root(root)
        missing = [p for p in paths if not (root / p).exists()]
        return f"{root} lacks {', '.join(missing)}" if missing else None
    return check


def _voc(root: Path | None) -> str | None:
    """VOC is read from ``ROOT/VOCdevkit/VOC2007``, ``ROOT/VOC2007`` or ROOT itself (resnetlib.detection.data)."""
    from ..data.common import resolve_root

    root = resolve_root(root)
    for folder in (root / "VOCdevkit" / "VOC2007", root / "VOC2007", root):
        if (folder / "Annotations").is_dir():
            return None
    return f"{root} lacks VOCdevkit/VOC2007/Annotations"


@dataclass(frozen=True)
class DataSet:
    """A data set an experiment reads, what its root must hold, and how to check that cheaply."""

    key: str
    label: str
    layout: str
    check: Callable[[Path | None], str | None]  # None: the loader's default search path


DATA_SETS: dict[str, DataSet] = {d.key: d for d in (
    DataSet("cifar10", "CIFAR-10", "the folder holding cifar-10-batches-py/", _cifar10),
    DataSet("imagenet", "ImageNet (ILSVRC2012)", "the folder holding train/<wnid>/ and val/<wnid>/",
            _entries("train", "val")),
    DataSet("voc", "PASCAL VOC", "the folder holding VOCdevkit/VOC2007 (and VOC2012)", _voc),
    DataSet("coco", "COCO", "the folder holding coco/{annotations,train2014,val2014}", _entries("coco/annotations")),
    DataSet("ilsvrc_loc", "ImageNet CLS-LOC", "the folder holding ILSVRC/ and LOC_synset_mapping.txt",
            _entries("ILSVRC/Data/CLS-LOC", "ILSVRC/Annotations/CLS-LOC", "LOC_synset_mapping.txt")),
    DataSet("fashion_mnist", "Fashion-MNIST", "a folder holding the four *-ubyte.gz files", _fashion_mnist),
)}

def _split(text: str) -> list[str]:
    return [item for item in re.split(r"[,\s]+", text.strip()) if item]


def parse_data_roots(items: Iterable[str] | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{data set: root}`` from ``$RESNETLIB_DATA_ROOTS`` then ``--data`` items (``NAME=DIR``), later winning.

    A malformed item or an unknown data set name is a ConfigError naming the closest valid name."""
    environ = os.environ if environ is None else environ
    roots: dict[str, str] = {}
    for source, entries in ((f"${ENV_VAR}", _split(environ.get(ENV_VAR, ""))), ("--data", list(items or ()))):
        for item in entries:
            key, sep, root = item.partition("=")
            if not sep or not key.strip() or not root.strip():
                raise ConfigError(f"{source} expects NAME=DIR (e.g. cifar10=/data/cifar), got {item!r}")
            key = key.strip()
            if key not in DATA_SETS:
                close = difflib.get_close_matches(key, list(DATA_SETS), n=1, cutoff=0.4)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"{source}: unknown data set '{key}'{hint} (data sets: {', '.join(DATA_SETS)})")
            roots[key] = str(Path(root.strip()).expanduser())
    return roots


def data_root_problems(needs: Mapping[str, tuple[str | None, str]]) -> list[str]:
    """One line per data root that does not hold its data set, naming the experiments that read it there.

    ``needs``: ``{experiment: (data set key or None, data_root as the experiment will get it)}``; an empty
    root is the loader's default search path (``$RESNETLIB_DATA`` or ``<repo>/data``; for Fashion-MNIST also
    the system's data sets)."""
    readers: dict[tuple[str, str], list[str]] = {}
    for name, (key, root) in needs.items():
        if key is not None:
            readers.setdefault((key, str(root or "")), []).append(name)
    problems = []
    for (key, root), names in readers.items():
        data_set = DATA_SETS[key]
        given = Path(root).expanduser() if root else None
        problem = f"{given} does not exist" if given and not given.exists() else data_set.check(given)
        if problem:
            problems.append(f"{data_set.label} not found: {problem} ({', '.join(names)} read it); pass "
                            f"--data {key}=DIR naming {data_set.layout}")
    return problems
