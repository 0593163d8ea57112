"""environment.yml and pyproject.toml agree; pyproject is the one list of dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()


def test_environment_installs_the_package_from_pyproject_with_its_test_extra():
    deps = environment()["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e .[test]" in pip
    assert environment()["channels"] == ["conda-forge", "nodefaults"]


def test_environment_python_satisfies_requires_python():
    conda = [d for d in environment()["dependencies"] if isinstance(d, str)]
    python = next(d for d in conda if d.startswith("python"))
    version = python.split("=")[1]
    minimum = pyproject()["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split(".")))


def test_environment_lists_no_dependency_that_pyproject_lacks():
    declared = {name_of(r) for r in pyproject()["project"]["dependencies"]}
    declared |= {name_of(r) for r in pyproject()["project"]["optional-dependencies"]["test"]}
    deps = environment()["dependencies"]
    conda = {name_of(d) for d in deps if isinstance(d, str)} - {"python", "pip"}
    pip = {name_of(d) for d in next(d["pip"] for d in deps if isinstance(d, dict)) if not d.startswith("-e")}
    assert conda <= declared and pip <= declared


def test_torch_pin_is_the_same_in_environment_and_makefile():
    make_pin = re.search(r"TORCH_PIN := (.+)", (ROOT / "Makefile").read_text()).group(1).split()
    pip = next(d["pip"] for d in environment()["dependencies"] if isinstance(d, dict))
    assert sorted(p for p in pip if p.startswith("torch")) == sorted(make_pin)


def test_the_test_command_needs_nothing_beyond_the_test_extra():
    """`make test` runs pytest-xdist (`-n`, `--no-loadscope-reorder`: xdist >= 3.8); the `test` extra, which
    environment.yml installs through `-e .[test]`, must provide it, so a clean clone and a conda env agree."""
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert " -n " in recipe and "--dist loadfile" in recipe and "--no-loadscope-reorder" in recipe
    extra = {name_of(r): r for r in pyproject()["project"]["optional-dependencies"]["test"]}
    assert "pytest" in extra and extra.get("pytest-xdist", "").endswith(">=3.8")


def test_the_test_command_ends_with_nbval_on_the_smoke_runs_run_cache():
    """`make test` runs nbval over every stored notebook after the tests, with the run cache the smoke run of
    every notebook trained into (tests/test_notebooks_smoke.py), so nbval trains nothing again."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    shared = re.search(r"RESNETLIB_SMOKE_RUNS_DIR=(\S+)", recipe).group(1)
    tests, nbval = recipe.index(" tests "), recipe.index("$(NBVAL)")
    assert tests < nbval and f"RESNETLIB_RUNS_DIR={shared} " in recipe[tests:nbval]
    assert re.search(r"^NBVAL := .*--nbval-lax notebooks$", makefile, re.M)
    smoke = (ROOT / "tests" / "test_notebooks_smoke.py").read_text()
    assert '"RESNETLIB_SMOKE_RUNS_DIR"' in smoke and 'setenv("RESNETLIB_RUNS_DIR"' in smoke


def test_torch_pins_satisfy_the_tested_range_of_pyproject():
    """environment.yml pins one tested torch/torchvision; pyproject's range (what was tested) must hold it."""
    from packaging.requirements import Requirement

    ranges = {name_of(r): Requirement(r).specifier for r in pyproject()["project"]["dependencies"]}
    pip = next(d["pip"] for d in environment()["dependencies"] if isinstance(d, dict))
    pins = [Requirement(p) for p in pip if p.startswith("torch")]
    assert {p.name for p in pins} == {"torch", "torchvision"}
    for pin in pins:
        (version,) = [s.version for s in pin.specifier]
        assert version in ranges[pin.name], f"{pin} is outside pyproject's {pin.name}{ranges[pin.name]}"
