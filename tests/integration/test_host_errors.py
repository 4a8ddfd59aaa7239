"""Input a job meets on its host (device, corpus, run directory, memory, disk): one line each.

What can be known before Hydra starts (a missing GPU, a missing or unreadable corpus file, a
batch larger than the corpus's bytes allow, a run directory that cannot be written) stops the
command in one line with exit 2 and writes nothing. What only the running job finds (bad
UTF-8, a corpus of blanks, more streams than tokens, memory or disk running out) also prints
one line and exits 2, and the job is recorded `failed` with that line. Read-only folders and
full disks are real: a private mount namespace (`unshare -m`) with a read-only bind mount or
a small tmpfs, gone when the command ends.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_TEXT_GRU, require_data_dir

pytestmark = [pytest.mark.slow, pytest.mark.faults]

TINY = TINY_TEXT_GRU


def _cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "lmexp.train", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "LMEXP_DATA_DIR": str(require_data_dir())}


def _train(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(args), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=180, **kwargs
    )


def _mounted(mounts: list[str], args: list[str]) -> subprocess.CompletedProcess:
    """`lmexp.train args` in a mount namespace of its own, after the shell commands `mounts`."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here (unshare -m: {probe.stderr.decode().strip()})")
    script = " && ".join([*mounts, "exec " + shlex.join(_cmd(args))])
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _read_only(folder: Path) -> list[str]:
    return [f"mount --bind {folder} {folder}", f"mount -o remount,bind,ro {folder}"]


def _one_line(done: subprocess.CompletedProcess) -> str:
    """The command's whole stderr: exit 2 and a single `lmexp: ...` line, no traceback."""
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmexp: "), done.stderr[-3000:]
    return lines[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def corpus(tmp_path, small_corpus) -> Path:
    """A copy of the small corpus this test may damage."""
    copy = tmp_path / "corpus"
    shutil.copytree(small_corpus, copy)
    return copy


def _fifo(corpus: Path) -> list[str]:
    (corpus / "train.txt").unlink()
    os.mkfifo(corpus / "train.txt")  # a reader would wait for a writer for ever
    return []


def _empty_valid(corpus: Path) -> list[str]:
    (corpus / "valid.txt").write_text("")
    return []


@pytest.mark.parametrize(
    ("case", "says"),
    [
        (lambda c: ["device=cuda:99"], "device='cuda:99' but"),
        (lambda c: [f"seed={2**64}"], f"seed={2**64} is out of range"),
        (lambda c: [f"data.root={c.parent / 'nowhere'}"], "data=text needs train.txt in"),
        (lambda c: [f"data.root={c}/../../../no-such"], "data=text needs train.txt in"),
        (lambda c: [f"data.root={c / 'train.txt'}"], "is a file, not a folder"),
        (
            lambda c: ["data=ptb", f"data.root={c}", "data.download=false"],
            "missing ptb.train.txt, ptb.valid.txt, ptb.test.txt in",
        ),
        (_fifo, "train.txt is a FIFO, not a corpus file"),
        (_empty_valid, "valid.txt is empty"),
        (lambda c: ["data.batch_size=100000"], "too short for 100000 streams"),
        (lambda c: ["data.eval_batch_size=100000"], "lower data.eval_batch_size"),
        (lambda c: [f"hydra.run.dir={c.parent / ('x' * 300)}"], "hydra.run.dir is too long"),
        (lambda c: [f"hydra.run.dir={c / 'train.txt' / 'run'}"], "is a file, not a folder"),
    ],
    ids=[
        "gpu-absent",
        "seed-2**64",
        "no-corpus",
        "traversal",
        "root-is-a-file",
        "ptb-missing",
        "fifo",
        "empty-file",
        "batch-over-bytes",
        "eval-batch-over-bytes",
        "run-dir-name-too-long",
        "run-dir-under-a-file",
    ],
)
def test_what_this_host_cannot_run_is_refused_before_hydra_starts(tmp_path, corpus, case, says):
    """Exit 2, one line naming the cause and the fix, no run directory, within seconds."""
    run_dir = tmp_path / "run"
    extra = case(corpus)
    done = _train([*TINY, f"data.root={corpus}", f"hydra.run.dir={run_dir}", *extra])
    line = _one_line(done)
    assert says in line, line
    assert not run_dir.exists() and done.stdout == ""


def test_a_grid_point_the_host_cannot_run_refuses_the_sweep_naming_it(tmp_path, corpus):
    sweep = tmp_path / "sweep"
    grid = ["data.batch_size=20,100000", f"hydra.sweep.dir={sweep}"]
    done = _train(["-m", *TINY, f"data.root={corpus}", *grid])
    line = _one_line(done)
    assert "too short for 100000 streams" in line and line.endswith(
        "(the job data.batch_size=100000)"
    ), line
    assert not sweep.exists()


def _failed_with_one_line(done: subprocess.CompletedProcess, run_dir: Path, says: str) -> dict:
    """Exit 2 and one stderr line; the job's record says `failed` with the same line."""
    line = _one_line(done)
    assert says in line, line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["usage_error"] is True, summary
    assert line == f"lmexp: {summary['error']}" and "traceback" not in summary
    assert "Traceback" not in (run_dir / "train.log").read_text()
    return summary


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda c: (c / "train.txt").open("ab").write(b"caf\xe9 \xff\n"), "is not UTF-8 text"),
        (lambda c: (c / "test.txt").write_text(" \n\n \t\n" * 50), "test.txt is empty"),
        # 4k tokens in 25k bytes: the bytes allow 5,000 streams, the tokens do not
        (lambda c: None, "too short for batch_size=5000"),
    ],
    ids=["invalid-utf8", "blank-corpus", "batch-over-tokens"],
)
def test_what_only_the_job_finds_is_one_line_and_a_failed_record(tmp_path, corpus, damage, says):
    run_dir = tmp_path / "run"
    damage(corpus)
    batch = ["data.eval_batch_size=5000"] if "batch" in says else []
    done = _train([*TINY, f"data.root={corpus}", f"hydra.run.dir={run_dir}", *batch])
    _failed_with_one_line(done, run_dir, says)


def test_memory_running_out_while_reading_the_corpus_is_one_line(tmp_path, corpus):
    """A 60 MB one-line corpus under an address-space limit of this host's start-up + 600 MB
    (encoding it takes about 900 MB): a MemoryError, said as what to do about it."""
    probe = subprocess.run(
        [sys.executable, "-c", "import lmexp.train; print(open('/proc/self/status').read())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0 or "VmPeak:" not in probe.stdout:
        pytest.skip("no /proc/self/status here to size the limit")
    start_kb = int(probe.stdout.split("VmPeak:")[1].split()[0])
    words = (corpus / "train.txt").read_text().split()
    line = " ".join(words) + " "
    with (corpus / "train.txt").open("w") as f:
        for _ in range(60_000_000 // len(line)):
            f.write(line)
    limit = (start_kb + 600 * 1024) * 1024

    def cap_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    run_dir = tmp_path / "run"
    done = _train([*TINY, f"data.root={corpus}", f"hydra.run.dir={run_dir}"], preexec_fn=cap_memory)
    summary = _failed_with_one_line(done, run_dir, "out of memory reading data=text")
    assert "use a smaller corpus" in summary["error"]


def test_a_full_disk_fails_the_job_in_one_line_naming_the_file(tmp_path, corpus):
    """A 20 MiB disk passes the pre-flight check (16 MiB free) and fills at the first
    checkpoint of a 2 x 1024 GRU (40 MB of weights)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    run_dir = disk / "run"
    done = _mounted(
        [f"mount -t tmpfs -o size=20m tmpfs {disk}", f"mkdir {run_dir}"],
        [
            *TINY,
            f"data.root={corpus}",
            "model.emb_size=512",
            "model.hidden_size=1024",
            f"hydra.run.dir={run_dir}",
        ],
    )
    line = _one_line(done)
    assert "No space left on device" in line and "checkpoints/" in line, line
    assert "free space on that disk, or write the run elsewhere" in line


def test_a_read_only_place_for_a_new_run_is_refused_before_hydra_starts(tmp_path, corpus):
    parent = tmp_path / "archive"
    parent.mkdir()
    done = _mounted(
        _read_only(parent), [*TINY, f"data.root={corpus}", f"hydra.run.dir={parent / 'run'}"]
    )
    line = _one_line(done)
    assert f"{parent} is not writable here" in line and "choose a writable" in line, line
    assert not (parent / "run").exists()


def test_a_read_only_finished_run_is_skipped_byte_identical(tmp_path, corpus):
    """resume=true on a completed job in a read-only directory: skipped, exit 0, every file as
    it was; without resume=true, refused in one line that says resume=true skips it."""
    run_dir = tmp_path / "run"
    args = [*TINY, f"data.root={corpus}", f"hydra.run.dir={run_dir}"]
    assert _train(args).returncode == 0
    before = _files(run_dir)
    skipped = _mounted(_read_only(run_dir), [*args, "resume=true"])
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert "already completed, skipped" in skipped.stdout
    refused = _mounted(_read_only(run_dir), args)
    assert "resume=true skips it" in _one_line(refused)
    assert _files(run_dir) == before


def test_a_read_only_finished_job_of_a_sweep_is_skipped_while_the_others_run(tmp_path, corpus):
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, f"data.root={corpus}", "seed=1,2", f"hydra.sweep.dir={sweep}"]
    assert _train(args).returncode == 0
    first, second = sweep / "0-gru-sgd-seed=1", sweep / "1-gru-sgd-seed=2"
    before = _files(first)
    shutil.rmtree(second)  # lost: the relaunch trains it again
    done = _mounted(_read_only(first), [*args, "resume=true"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert _files(first) == before
    assert json.loads((second / "summary.json").read_text())["status"] == "completed"


def test_a_relaunch_into_a_sweep_that_holds_runs_is_refused_before_any_job(tmp_path, corpus):
    """Without resume=true, or with other settings: one line naming the job directory (was
    Hydra's 'Error executing job' and its hint, once the first job had started)."""
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, f"data.root={corpus}", "seed=1,2", f"hydra.sweep.dir={sweep}"]
    assert _train(args).returncode == 0
    before = _files(sweep)
    again = _one_line(_train(args))
    first = sweep / "0-gru-sgd-seed=1"
    assert f"{first} already holds a run" in again and "resume=true" in again
    changed = _one_line(_train([*args, "optim.lr=3", "resume=true"]))
    assert changed.startswith(f"lmexp: {first}: this job directory's run"), changed
    assert "optim.lr: 5.0 -> 3.0" in changed and changed.endswith("(the job seed=1)"), changed
    assert _files(sweep) == before
