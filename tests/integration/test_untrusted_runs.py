"""A run directory is data: what it contains never chooses code for lmexp to run.

A crafted run names `model=custom` with a module shipped beside it; every command that opens a
run (evaluate, generate, internals) refuses it in one line, and even with the user's opt-in the
module is not imported from the working directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lmexp.run.checkpoint import load_checkpoint, save_checkpoint
from lmexp.run.rundir import RunDir
from tests.conftest import REPO, require_data_dir

pytestmark = [pytest.mark.slow, pytest.mark.faults]

PAYLOAD = "import pathlib; pathlib.Path('IMPORTED').write_text('code ran')\nX = 1\n"
COMMANDS = ("lmexp.inspect.evaluate", "lmexp.inspect.generate", "lmexp.inspect.internals")


def _crafted(trained: Path, into: Path, keep_record: bool) -> Path:
    """A copy of a trained run whose saved configs name model=custom, evilmod.X."""
    run = Path(shutil.copytree(trained, into / "run"))
    custom = {"name": "custom", "_target_": "evilmod.X", "hidden_size": 16, "num_layers": 2,
              "dropout": 0.0, "tie_weights": False, "kwargs": {}}  # fmt: skip
    for path in (RunDir(run).best, RunDir(run).last):
        if path.exists():
            payload = load_checkpoint(path)
            payload["config"]["model"] = custom
            save_checkpoint(payload, path)  # plain data: it passes weights_only=True
    record = RunDir(run).recorded_config
    if keep_record:
        config = json.loads(record.read_text())
        record.write_text(json.dumps({**config, "model": custom}))
    else:
        record.unlink()  # a run of an older lmexp: the checkpoint's copy is what is read
    return run


def _open(command: str, run: Path, cwd: Path, *extra: str, path: str | None = None):
    env = {**os.environ, "LMEXP_DATA_DIR": str(require_data_dir())}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), path) if p)
    return subprocess.run(
        [sys.executable, "-m", command, str(run), *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("keep_record", [True, False], ids=["record", "checkpoint-only"])
def test_a_run_naming_code_of_its_own_is_refused_and_imports_nothing(
    trained_runs, tmp_path, keep_record
) -> None:
    run = _crafted(trained_runs["gru"], tmp_path, keep_record)
    here = tmp_path / "downloads"  # where the user stands: the run came with evilmod.py
    here.mkdir()
    (here / "evilmod.py").write_text(PAYLOAD)
    for command in COMMANDS:
        refused = _open(command, run, here)
        assert refused.returncode == 2, refused.stderr[-2000:]
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "--trust-model-code" in lines[0], refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr
    # the opt-in imports from the paths the user set, never from the working directory
    trusted = _open(COMMANDS[0], run, here, "--trust-model-code")
    assert trusted.returncode == 2 and "cannot import evilmod" in trusted.stderr
    assert not (here / "IMPORTED").exists()
    shipped = tmp_path / "mine"
    shipped.mkdir()
    (shipped / "evilmod.py").write_text(PAYLOAD)
    chosen = _open(COMMANDS[0], run, here, "--trust-model-code", path=str(shipped))
    assert chosen.returncode == 2 and "is not a lmexp.models.LanguageModel" in chosen.stderr
    assert (here / "IMPORTED").exists()  # the user's own module, on their PYTHONPATH, ran


def test_lmexp_load_refuses_it_and_takes_trust_code(trained_runs, tmp_path, monkeypatch) -> None:
    import lmexp
    from lmexp.inspect.trust import UntrustedModelCode

    run = _crafted(trained_runs["gru"], tmp_path, keep_record=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evilmod.py").write_text(PAYLOAD)
    monkeypatch.syspath_prepend("")  # as `python -m` or a notebook has it
    with pytest.raises(UntrustedModelCode, match="trust_code=True"):
        lmexp.load(run)
    with pytest.raises(ValueError, match="cannot import evilmod"):
        lmexp.load(run, trust_code=True)
    assert not (tmp_path / "IMPORTED").exists() and "evilmod" not in sys.modules
    assert lmexp.load(trained_runs["gru"]).next_log_probs("the").shape[0] > 100  # its own: opens
