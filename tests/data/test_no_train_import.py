"""resnetlib.data never imports resnetlib.train (no import cycle: the loop depends on the data, not back)."""

import ast
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "resnetlib" / "data"


def imports_of_train(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module, names = node.module or "", [a.name for a in node.names]
            from_train = module.split(".")[0] == "train" or (not module and "train" in names)
            relative_train = node.level == 2 and from_train
            absolute_train = module.startswith("resnetlib.train") or (
                module == "resnetlib" and "train" in names)
            if relative_train or absolute_train:
                found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno}" for a in node.names
                      if a.name.startswith("resnetlib.train")]
    return found


def test_no_module_under_data_imports_train_even_inside_functions():
    assert [hit for f in sorted(DATA.rglob("*.py")) for hit in imports_of_train(f)] == []


def test_importing_data_loads_nothing_of_train():
    code = ("import sys, resnetlib.data.loader; "
            "print(any(m.startswith('resnetlib.train') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
