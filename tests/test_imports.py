"""The import graph of resnetlib: no cycles, and report/ is presentation only (issue 19, item 1).

The graph is read from the source with ``ast`` (every ``import`` and ``from ... import``, those inside
functions included: a lazy import hides a cycle, it does not remove it). An edge from a module to one of
its own parent packages is left out: Python initialises the parent before the child in any case.
"""

from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "resnetlib"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str, level: int, here: str, is_package: bool) -> str:
    if level == 0:
        return name
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The resnetlib modules ``name`` imports (a ``from X import y`` of a submodule ``y`` counts as X.y)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module or "", node.level, name, is_package)
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
            found |= subs or {target}
    return {m for m in found if m in known and m != name and not name.startswith(m + ".")}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_known_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_resnetlib():
    assert cycles(graph()) == []


def test_report_imports_only_the_judge_and_the_shared_basics():
    """report/ presents claims: it imports resnetlib.claims, paths and config, never experiments or train
    (nor detection, models, data)."""
    allowed = ("resnetlib.report", "resnetlib.claims", "resnetlib.paths", "resnetlib.config")
    edges = graph()
    bad = {f"{m} -> {t}" for m, targets in edges.items() if m.startswith("resnetlib.report")
           for t in targets if not t.startswith(allowed) and t != "resnetlib"}
    assert bad == set(), sorted(bad)


def test_the_judge_imports_neither_experiments_nor_report():
    edges = graph()
    bad = {f"{m} -> {t}" for m, targets in edges.items() if m.startswith("resnetlib.claims")
           for t in targets if t.startswith(("resnetlib.experiments", "resnetlib.report", "resnetlib.train"))}
    assert bad == set()


def test_only_the_experiments_and_the_runner_import_report():
    """Presentation sits on top: models, data, train, detection, ... never import report (the detection
    figures live in report/detection_figures.py)."""
    users = ("resnetlib.report", "resnetlib.experiments", "resnetlib.reproduce", "resnetlib.cli",
             "resnetlib.run_queue")
    edges = graph()
    bad = {f"{m} -> {t}" for m, targets in edges.items() if not m.startswith(users)
           for t in targets if t.startswith("resnetlib.report")}
    assert bad == set()
