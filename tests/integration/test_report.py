"""A real tiny multirun, then `python -m analysis.report` on it, then the page in headless Chromium.

Chromium is Debian's `chromium` package; without it the browser check is skipped with a reason.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from lmexp.training.trainer import COLUMNS
from tests.conftest import run_module, shared_data_dir

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Tiny models on the small corpus (~94 steps an epoch of 20 x 35 tokens): evaluating every 7%
# of it with a 13-step budget gives 2 metrics rows per job (steps 7 and 13). Evaluations set
# this test's time; the small corpus's validation split is 16x smaller than PTB's.
TINY = [
    "trainer=smoke",
    "trainer.max_steps=13",
    "trainer.eval_every=0.07",
    "model.hidden_size=16",  # every architecture has it; emb_size, num_heads... only some
    "threads=1",
    "data=text",
]


def _run(module: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return run_module(module, args, shared_data_dir(), timeout)


def _tiny_sweep(into: Path, corpus: Path) -> Path:
    sweep = into / "sweep"
    args = ["-m", "model=rnn,gru", "optim=sgd,adam", *TINY, f"data.root={corpus}"]
    args.append(f"hydra.sweep.dir={sweep}")
    proc = _run("lmexp.train", args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def _report(paths: list[Path], out: Path) -> subprocess.CompletedProcess:
    proc = _run("analysis.report", [*map(str, paths), "--out", str(out)], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _loaded_dom(page: Path, profile: Path) -> str:
    """The DOM after load, from headless Chromium; skips when Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found; install it with `apt-get install -y chromium`")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
    ]
    proc = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _assert_page_rendered(out: Path, tmp_path: Path) -> str:
    n_images = len(list((out / "figures").glob("*.png")))
    dom = _loaded_dom(out / "report.html", tmp_path / "chromium")
    assert f'data-images-loaded="{n_images}/{n_images}"' in dom, dom[:500]
    assert '<table id="results">' in dom and "<figcaption>" in dom
    return dom


def test_report_of_a_real_sweep_and_of_a_broken_copy(tmp_path, small_corpus) -> None:
    """One test, so that `pytest -n 2` trains the sweep once rather than once per worker."""
    sweep = _tiny_sweep(tmp_path, small_corpus)
    _check_report(sweep, tmp_path / "clean")
    _check_broken_report(_break_jobs(sweep, tmp_path / "broken"), tmp_path / "broken")


def _check_report(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    latest = sweep.parent / "latest"  # the README's report command names it, as written
    assert latest.resolve() == sweep.resolve()
    proc = _report([latest], out)
    assert str(out / "report.html") in proc.stdout and str(out / "report.md") in proc.stdout
    table = pd.read_csv(out / "results.csv")
    assert table["exp"].tolist() == [1, 2, 3, 4]
    pairs = list(zip(table["model"], table["optim"], strict=True))
    assert pairs == [("rnn", "sgd"), ("rnn", "adam"), ("gru", "sgd"), ("gru", "adam")]
    assert (table["n_points"] >= 2).all() and (table["status"] == "completed").all()
    for _, group in table.groupby("model"):
        assert group["best"].sum() == 1
        assert group.loc[group["best"], "best_val_ppl"].item() == group["best_val_ppl"].min()
    rows = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 4 and sum(row.count("**") for row in rows) == 2 * 2
    assert (out / "results.tex").read_text().count("\\textbf{") == 2
    commands = pd.read_csv(out / "commands.csv")
    assert commands["command"].str.startswith("python -m lmexp.train").all()
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(figures) == 4 + 2 + 2 + 1 and "overview.png" in figures
    assert len(list((out / "figures").glob("*.pdf"))) == len(figures)
    dom = _assert_page_rendered(out, tmp_path)
    # the interactive view ran in the browser: one line per job, its axes, no network needed
    assert 'data-parcoords="4"' in dom and dom.count('class="job"') == 4
    assert "Hyper-parameters against" in dom and "4 of 4 jobs shown" in dom
    assert "http://" not in (out / "report.html").read_text().replace("http://www.w3.org", "")


def _break_jobs(sweep: Path, into: Path) -> Path:
    """A copy of the sweep plus a failed, a diverged and a half-written job made from real ones."""
    into.mkdir()
    copy = shutil.copytree(sweep, into / sweep.name, ignore=shutil.ignore_patterns("*.pt"))
    failed = shutil.copytree(copy / "0-rnn-sgd", copy / "4-rnn-sgd")
    header = (failed / "metrics.csv").read_text().splitlines()[0]
    (failed / "metrics.csv").write_text(header + "\n")
    _edit_summary(
        failed,
        status="failed",
        error_type="RuntimeError",
        error="boom at step 1",
        best_val_ppl=None,
        final_val_ppl=None,
        test_ppl=None,
    )
    diverged = shutil.copytree(copy / "1-rnn-adam", copy / "5-rnn-adam")
    last = (diverged / "metrics.csv").read_text().splitlines()[-1].split(",")
    epoch, train_ppl, val_ppl = (COLUMNS.index(c) for c in ("epoch", "train_ppl", "val_ppl"))
    last[epoch], last[train_ppl], last[val_ppl] = str(float(last[epoch]) + 0.01), "inf", "nan"
    with (diverged / "metrics.csv").open("a") as f:
        f.write(",".join(last) + "\n")
    _edit_summary(diverged, status="diverged", final_val_ppl="nan", test_ppl=None)
    truncated = shutil.copytree(copy / "2-gru-sgd", copy / "6-gru-sgd")
    with (truncated / "metrics.csv").open("a") as f:
        f.write("0.05,70,49000,12.3,12.3,5.0,6.9")  # killed mid-row
    _edit_summary(truncated, status="running")  # its process (the sweep's) is gone: killed
    return copy


def _edit_summary(job: Path, **fields: object) -> None:
    summary = json.loads((job / "summary.json").read_text())
    (job / "summary.json").write_text(json.dumps({**summary, **fields}, indent=2))


def _check_broken_report(broken: Path, tmp_path: Path) -> None:
    """Failed, diverged and half-written jobs stay in the table and on the page."""
    out = tmp_path / "report"
    _report([broken], out)
    table = pd.read_csv(out / "results.csv").set_index("job_id")
    assert len(table) == 7
    assert table.loc["sweep/4-rnn-sgd", "status"] == "failed"
    assert table.loc["sweep/4-rnn-sgd", "n_points"] == 0
    assert math.isnan(table.loc["sweep/4-rnn-sgd", "best_val_ppl"])
    assert not table.loc["sweep/4-rnn-sgd", "best"]
    assert table.loc["sweep/5-rnn-adam", "status"] == "diverged"
    assert math.isnan(table.loc["sweep/5-rnn-adam", "last_val_ppl"])
    original = pd.read_csv(broken / "2-gru-sgd" / "metrics.csv")
    assert table.loc["sweep/6-gru-sgd", "n_points"] == len(original)
    assert table.loc["sweep/6-gru-sgd", "status"] == "killed"
    assert table.groupby("model")["best"].sum().to_dict() == {"gru": 1, "rnn": 1}
    dom = _assert_page_rendered(out, tmp_path)
    for status in ("completed", "failed", "diverged", "killed"):
        assert re.search(rf"<td>{status}</td>", dom), status
    assert "RuntimeError: boom at step 1" in dom
    assert "Not plotted (no metrics rows): #" in dom and "sweep/4-rnn-sgd (failed)" in dom
