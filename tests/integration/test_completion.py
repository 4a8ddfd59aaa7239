"""Tab completion of `lmexp-train` in a real bash, through the hook Hydra installs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require_data_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash"),
]

# completes the last word of each line as bash would after a Tab, printing COMPREPLY
SCRIPT = r"""
eval "$(lmexp-train -sc install=bash)"
while IFS= read -r line; do
  COMP_LINE="$line"; COMP_POINT=${#line}; words=($line); COMP_CWORD=$((${#words[@]}-1))
  COMPREPLY=(); hydra_bash_completion; echo "${COMPREPLY[*]}"
done
"""


def _complete(lines: list[str], cache: Path) -> list[str]:
    bin_dir = str(Path(sys.executable).parent)  # where pip put the console script
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "LMEXP_DATA_DIR": str(require_data_dir()),
        "XDG_CACHE_HOME": str(cache),  # the completion cache (lmexp/completion.py), not ~/.cache
    }
    done = subprocess.run(
        ["bash", "-c", SCRIPT],
        input="\n".join(lines) + "\n",
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_lmexp_train_completes_groups_keys_and_choices(tmp_path):
    got = _complete(
        [
            "lmexp-train model=",  # a group's options (Hydra)
            "lmexp-train precision=",  # a choice key's values (lmexp)
            "lmexp-train model=transformer model.norm=p",  # the chosen architecture's
            "lmexp-train model.hid",  # a key (Hydra)
        ],
        tmp_path,
    )
    models = ["custom", "gru", "lstm", "rnn", "rnn_attn", "transformer"]
    assert got[0].split() == [f"model={m}" for m in models]
    assert got[1].split() == ["precision=fp32", "precision=bf16"]
    assert got[2].split() == ["model.norm=pre", "model.norm=post"]
    assert got[3].split() == ["model.hidden_size="]


def test_a_completion_query_answers_from_the_cache_without_torch(tmp_path):
    """The first query builds the cache (imports torch, once); the next ones import neither
    torch nor Hydra, the bulk of a TAB's time before."""
    code = (
        "import os, sys, time\n"
        "from lmexp.entry import complete_quickly\n"
        "t = time.perf_counter()\n"
        "try:\n    complete_quickly(['-sc', 'query=bash'])\nexcept SystemExit:\n    pass\n"
        "print('\\ntook', round(time.perf_counter() - t, 3), 'torch' in sys.modules, "
        "'hydra' in sys.modules, file=sys.stderr)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COMP_LINE": "lmexp-train model.hid"}

    def query() -> tuple[str, list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip(), done.stderr.strip().splitlines()[-1].split()

    first, (_, _, torch_first, _) = query()
    assert first == "model.hidden_size=" and torch_first == "True"  # built the cache
    assert len(list((tmp_path / "lmexp").glob("completion-*.json"))) == 1
    again, (_, seconds, torch_again, hydra_again) = query()
    assert again == "model.hidden_size=" and (torch_again, hydra_again) == ("False", "False")
    print(f"cached completion query: {seconds} s")  # shown with -s; not a timed assertion
