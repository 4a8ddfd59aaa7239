"""What a sweep prints: a bar per phase naming the job and k/N, log lines above the bars, one
tok/s figure, and at the end a results table, also written beside multirun.yaml."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, require_data_dir, small_run_args

pytestmark = pytest.mark.slow

LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\]\[(lmexp[\w.]*|HYDRA)\]")


def test_a_sweeps_console_reads_well(small_corpus, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        *small_run_args(small_corpus),
        "model=gru,rnn",
        "trainer.max_steps=50",
        "trainer.progress=on",  # bars though stderr is a pipe here
        f"hydra.sweep.dir={sweep}",
    ]
    env = {**os.environ, "LMEXP_DATA_DIR": str(require_data_dir()), "COLUMNS": "160"}
    done = subprocess.run(
        [sys.executable, "-m", "lmexp.train", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order a terminal shows it
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    segments = re.split(r"[\r\n]", out)  # what is drawn from the start of a line

    # one bar per phase, named after the job and its place in the sweep
    for job, name in (("[1/2]", "0-gru-adam"), ("[2/2]", "1-rnn-adam")):
        for phase in ("train", "validation", "test"):
            assert any(s.startswith(f"{job} {name} {phase}:") for s in segments), (job, phase)

    # every log line starts a line of its own: none is printed onto a bar
    for segment in segments:
        if "[lmexp.job.writer]" in segment:
            assert LOG_LINE.match(segment), segment

    # the bar's speed is the figure the log gives (training time only), within 15 %
    for logged in re.finditer(r"step (\d+) \|.*\| (\d+) tok/s", out):
        before = out[: logged.start()]
        shown = re.findall(r"train: .*?([\d,]+) tok/s", before)
        assert shown, "no speed on the bar before the log line"
        bar, log = float(shown[-1].replace(",", "")), float(logged.group(2))
        assert abs(bar - log) / log < 0.15, (bar, log)
    assert "ktok/s" not in out  # tqdm's own rate is not shown beside it

    # the end: status counts and a table of every job, printed and written beside multirun.yaml
    table = (sweep / "results.md").read_text()
    for text in (out, table):
        assert re.search(
            r"\| job +\| status +\| +best val ppl \| +test ppl \| +total time \|", text
        )
        assert re.search(
            r"\| 0-gru-adam +\| completed +\| +[\d,.]+ \| +[\d,.]+ \| +\dm \d\ds \|", text
        )
        assert re.search(r"\| 1-rnn-adam +\| completed +\|", text)
    assert (sweep / "multirun.yaml").is_file()
