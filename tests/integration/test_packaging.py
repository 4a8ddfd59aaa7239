"""A wheel of lmexp carries its configs and the analysis, and runs a sweep from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from tests.conftest import REPO


def test_every_package_of_the_source_tree_is_in_the_wheel_list() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for top in ("lmexp", "hydra_plugins")
        for p in (REPO / top).rglob("__init__.py")
    }
    assert found | {"lmexp.analysis", "lmexp.conf"} == listed
    # a namespace package, shared with Hydra's other plugins: never an __init__.py of its own
    assert not (REPO / "hydra_plugins" / "__init__.py").exists()


BUILD_LEFTOVERS = (
    ".git",
    ".venv",
    "outputs",
    "multirun",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
)


def _files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def _run(args: list, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_a_wheel_runs_a_two_job_sweep_and_its_report_from_another_folder(tmp_path, data_dir):
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    # built from a copy, so the checkout gets no build/ or egg-info of this test's
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*BUILD_LEFTOVERS))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source])
    (wheel,) = wheels.glob("lmexp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lmexp/conf/train.yaml" in names and "lmexp/conf/model/gru.yaml" in names
    # every file of conf/, however deep (a glob of fixed depth once dropped the presets' overlays)
    conf_tree = {f"lmexp/conf/{p.relative_to(REPO / 'conf')}" for p in _files(REPO / "conf")}
    assert conf_tree and conf_tree == {n for n in names if n.startswith("lmexp/conf/")}
    assert "lmexp/analysis/report.py" in names
    assert not any(n.startswith(("analysis/", "conf/", "tests/")) for n in names)
    assert "hydra_plugins/lmexp_search/__init__.py" in names  # the Optuna search's sweeper
    assert "hydra_plugins/__init__.py" not in names
    _run([*pip, "install", "--no-deps", "--target", site, wheel])
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "LMEXP_DATA_DIR": str(data_dir)}
    where = _run([sys.executable, "-c", "import lmexp; print(lmexp.__file__)"], cwd=work, env=env)
    assert where.stdout.startswith(str(site))  # the wheel's copy, not the checkout
    # installed from a wheel, Hydra's own plugin scan finds the sweeper (no lmexp.register())
    scan = "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
    scan += "print([c.__module__ for c in Plugins.instance().discover(Sweeper)])"
    found = _run([sys.executable, "-c", scan], cwd=work, env=env)
    assert "hydra_plugins.lmexp_search" in found.stdout
    sweep = work / "sweep"
    _run(
        [
            site / "bin" / "lmexp-train", "-m", "model=rnn,gru", "trainer=smoke",
            "trainer.max_steps=5", "model.emb_size=16", "model.hidden_size=16", "threads=1",
            "trainer.progress=off", f"hydra.sweep.dir={sweep}",
        ],
        cwd=work,
        env=env,
    )  # fmt: skip
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0-rnn-sgd", "1-gru-sgd"]
    _run([site / "bin" / "lmexp-report", sweep, "--out", work / "report", "-q"], cwd=work, env=env)
    table = (work / "report" / "results.md").read_text()
    assert "| RNN " in table and "| GRU " in table
