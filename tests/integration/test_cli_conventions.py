"""What every command does as its users expect: `--version` with lmexp's version, `<prog>:`
prefixes that name the console script, and console lines that say whose they are."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lmexp
from lmexp.logfmt import SourceFormatter
from tests.conftest import REPO

BIN = Path(sys.executable).parent
COMMANDS = [
    "lmexp-train", "lmexp-evaluate", "lmexp-generate", "lmexp-internals", "lmexp-report",
    "lmexp-status",
]  # fmt: skip


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_prints_lmexps_version(command):
    done = _run([str(BIN / command), "--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{command} {lmexp.__version__} (Hydra "), done.stdout
    assert "PyTorch" in done.stdout and done.stderr == ""


@pytest.mark.parametrize(
    ("module", "prog"),
    [("lmexp.train", "lmexp-train"), ("lmexp.analysis.report", "lmexp-report")],
)
def test_the_python_m_form_prints_it_too(module, prog):
    done = _run([sys.executable, "-m", module, "--version"])
    assert done.returncode == 0 and done.stdout.startswith(f"{prog} {lmexp.__version__} ")


def test_the_version_is_the_installed_distributions():
    from importlib.metadata import version

    assert lmexp.__version__ == version("lmexp") != "not installed"


def test_the_console_script_answers_version_without_importing_torch():
    code = (
        "import sys, runpy; sys.argv = ['lmexp-train', '--version']\n"
        "from lmexp.entry import train\n"
        "try:\n    train()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    done = _run([sys.executable, "-c", code])
    assert done.stdout.splitlines()[-1] == "False", done.stdout + done.stderr


@pytest.mark.parametrize("command", ["lmexp-evaluate", "lmexp-report"])
def test_a_bad_path_is_one_line_under_the_commands_own_name(tmp_path, command):
    extra = ["--out", str(tmp_path / "r")] if command == "lmexp-report" else []
    env = {**os.environ}
    done = subprocess.run(
        [str(BIN / command), str(tmp_path / "missing"), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    (line,) = done.stderr.strip().splitlines()
    assert done.returncode == 2 and line.startswith(f"{command}: error: "), done.stderr


def test_console_lines_say_whose_they_are():
    formatter = SourceFormatter("[%(source)s] %(message)s")

    def line(name: str) -> str:
        record = logging.LogRecord(name, logging.INFO, __file__, 1, "hi", None, None)
        return formatter.format(record)

    assert line("lmexp.callbacks") == "[lmexp] hi"
    assert line("hydra_plugins.lmexp_search.sweeper") == "[lmexp] hi"
    assert line("hydra.core.utils") == "[HYDRA] hi"
    assert line("hydra_plugins.hydra_joblib_launcher") == "[HYDRA] hi"
