"""The install surface: pyproject, environment.yml, Makefile and CI agree; import has no side effects."""

import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    py = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-e .[dev]"]
    extras = py["project"]["optional-dependencies"]
    assert "dev" in extras and "book" in extras
    assert any(d.startswith("ever[book]") for d in extras["dev"])
    # python in the env satisfies requires-python
    lo = py["project"]["requires-python"].lstrip(">=")
    assert tuple(int(x) for x in "3.11".split(".")) >= tuple(int(x) for x in lo.split("."))
    # no conda package duplicates a pyproject dependency with another spec
    conda_pkgs = {d.split("=")[0] for d in deps if isinstance(d, str)}
    assert conda_pkgs <= {"python", "pip"}


def test_pyproject_declares_package_script_and_no_torchvision():
    py = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert py["tool"]["setuptools"]["packages"]["find"]["include"] == ["ever*"]
    assert py["project"]["scripts"]["ever"] == "ever.cli:main"
    deps = " ".join(py["project"]["dependencies"])
    assert "torchvision" not in deps
    for need in ("torch", "numpy", "decord", "scikit-image", "pyyaml", "tqdm"):
        assert need in deps
    book = " ".join(py["project"]["optional-dependencies"]["book"])
    for need in ("jupyter-book>=1.0.4,<2", "papermill", "codecarbon", "seaborn", "matplotlib"):
        assert need in book


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text().splitlines()
    head = "\n".join(readme[:25])
    assert "make report" in head and "make test" in head
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_import_has_no_side_effects(tmp_path):
    code = "import os, ever, ever.config, ever.walk, ever.nodes, ever.train, ever.cli; print(sorted(os.listdir('.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
