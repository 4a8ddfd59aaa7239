"""Faults that must never make the record lie, each checked in-process with real files.

Signals deferred past a checkpoint write, bad values refused with the key named, a stalled
mirror on loopback, a full disk, file modes, leftovers, unreadable checkpoints and summaries,
dead writers told from live ones, one writer per job directory.
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from lmexp import atomic
from lmexp.atomic import default_mode, remove_leftovers
from lmexp.data.download import fetch
from lmexp.run import signals
from lmexp.run.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lmexp.run.liveness import JobDirLocked, alive, effective_status, this_process, writer_lock
from lmexp.run.record import ConfigChanged, check_relaunch, config_changes
from lmexp.run.rundir import RunDir
from lmexp.run.summary import write_json_atomic

pytestmark = pytest.mark.faults

# --- signals ------------------------------------------------------------------------------


def test_a_signal_inside_a_deferred_block_waits_for_its_end() -> None:
    done = []
    with (
        signals.handling(),
        pytest.raises(signals.JobInterrupted) as caught,
        signals.deferred(),
    ):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run by now: it only took note
        done.append("block finished")
    assert done == ["block finished"] and caught.value.signal_name == "SIGTERM"


def test_sigint_during_a_checkpoint_write_leaves_a_whole_checkpoint(tmp_path) -> None:
    # a payload big enough that the write takes a while; SIGINT lands while it is written
    payload = {"w": torch.randn(8_000_000)}
    path = tmp_path / "last.pt"
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    with signals.handling(), pytest.raises(signals.JobInterrupted) as caught:
        timer.start()
        for _ in range(50):  # until the signal has come (each save takes well over 0.05 s)
            save_checkpoint(payload, path)
    timer.join()
    assert caught.value.signal_name == "SIGINT"
    assert torch.equal(load_checkpoint(path)["w"], payload["w"])  # whole, and loadable
    assert not list(tmp_path.glob(".*.tmp"))


def test_outside_a_job_the_handlers_are_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with signals.handling():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_preemption_signal_only_takes_note_then_goes_on_to_the_cluster_handler() -> None:
    calls = []
    before = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with pytest.raises(signals.JobPreempted), signals.handling():
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.05)
            assert signals.preemption_requested() == "SIGUSR2" and calls == []  # a note only
            raise signals.JobPreempted("SIGUSR2")  # what the trainer raises once it has saved
        assert calls == [signal.SIGUSR2]  # handed on once lmexp's handlers were removed
        assert signals.preemption_requested() is None
    finally:
        signal.signal(signal.SIGUSR2, before)


# A job process as submitit starts it: SUBMITIT_FOLDER set, then the job unpickled (importing
# lmexp); a preemption signal comes before any handler is in; later the job runs.
_STARTING_JOB = """
import os, signal
import lmexp
os.kill(os.getpid(), signal.SIGUSR2)
cluster = []  # submitit's handler, installed once the job is unpickled
signal.signal(signal.SIGUSR2, lambda signum, frame: cluster.append(signum))
from lmexp.run import signals
with signals.handling():
    print(signals.preemption_requested(), cluster)
"""


def test_a_preemption_signal_while_a_submitit_job_starts_is_kept_for_the_job(tmp_path) -> None:
    """Before, SIGUSR2 in those seconds killed the job (never requeued); now the job acts on it
    at its first step, and only in such a process: elsewhere the signal keeps its default."""
    env = {**os.environ, "SUBMITIT_FOLDER": str(tmp_path)}
    run = [sys.executable, "-c", _STARTING_JOB]
    kept = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert kept.returncode == 0 and kept.stdout.strip() == "SIGUSR2 []", kept.stderr[-2000:]
    env.pop("SUBMITIT_FOLDER")
    default = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert default.returncode == -signal.SIGUSR2


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGHUP])  # SIGHUP: under nohup
def test_an_ignored_signal_stays_ignored(sig) -> None:
    before = signal.signal(sig, signal.SIG_IGN)
    try:
        with signals.handling():
            assert signal.getsignal(sig) is signal.SIG_IGN
    finally:
        signal.signal(sig, before)


def test_a_second_signal_while_the_job_stops_is_not_raised_again() -> None:
    with signals.handling(), pytest.raises(signals.JobInterrupted) as caught:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        finally:  # where the job records `interrupted`: a second Ctrl-C must not cut it short
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            recorded = True
    assert caught.value.signal_name == "SIGINT" and recorded


# --- files --------------------------------------------------------------------------------


def test_written_files_get_the_mode_open_would_give(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        write_json_atomic({"status": "running"}, tmp_path / "summary.json")
        save_checkpoint({"x": torch.zeros(1)}, tmp_path / "best.pt")
        assert default_mode() == 0o644
    finally:
        os.umask(old)
    for name in ("summary.json", "best.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_a_full_disk_names_the_checkpoint_and_what_was_kept(tmp_path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"x": torch.zeros(1)}, path)
    real = atomic.os.fsync

    def full(fd):  # the write lands in the page cache; ENOSPC surfaces at the flush
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match=r"No space left.*last.pt \(the previous last.pt is kept\)"):
        save_checkpoint({"x": torch.ones(1)}, path)
    monkeypatch.setattr(atomic.os, "fsync", real)
    assert load_checkpoint(path)["x"].item() == 0.0  # the old one, intact
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_truncated_checkpoint_is_named_with_what_to_do(tmp_path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"x": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"last.pt cannot be read.*truncated.*rm "):
        load_checkpoint(path)


def test_leftovers_of_killed_writers_are_removed(tmp_path) -> None:
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / "keep.tmp").write_bytes(b"not ours: no leading dot")
    assert [p.name for p in remove_leftovers(tmp_path)] == [".last.pt.abc123.tmp"]
    assert (tmp_path / "keep.tmp").exists()


# --- downloads ----------------------------------------------------------------------------


class _Trickle(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


def test_a_mirror_that_trickles_bytes_times_out_and_leaves_no_part_file(tmp_path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ptb.train.txt"
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=r"ptb.train.txt stalled"):
            fetch(url, tmp_path / "ptb.train.txt", "0" * 64, timeout=1.0)
    finally:
        server.shutdown()
    assert time.monotonic() - started < 5  # per read it never timed out: a byte every 0.1 s
    assert list(tmp_path.iterdir()) == []


class _Endless(http.server.BaseHTTPRequestHandler):
    """A wrong URL that streams without end, announcing no length (or `length`)."""

    length: str | None = None

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        if self.length is not None:
            self.send_header("Content-Length", self.length)
        self.end_headers()
        try:
            for _ in range(10_000):  # 640 MiB if nobody stops reading
                self.wfile.write(b"y" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


class _Announced(_Endless):
    length = "999999999"


@pytest.mark.parametrize(("handler", "says"), [(_Endless, "sent more"), (_Announced, "announces")])
def test_a_download_stops_at_the_files_published_size(tmp_path, handler, says) -> None:
    from lmexp.data.download import DataError

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ptb.valid.txt"
    try:
        with pytest.raises(DataError, match=rf"{says} .*399,782 bytes.*try another mirror"):
            fetch(url, tmp_path / "ptb.valid.txt", "0" * 64, size=399_782, timeout=5.0)
    finally:
        server.shutdown()
    assert list(tmp_path.iterdir()) == []  # nothing kept, the disk never filled


def test_every_published_size_and_digest_is_the_shared_copys(data_dir) -> None:
    from lmexp.data.download import sha256_file
    from lmexp.data.ptb import PTB
    from lmexp.data.text8 import TEXT8

    for spec in (PTB, TEXT8):
        for file in spec.files.values():
            path = data_dir / spec.name / file.name
            assert (path.stat().st_size, sha256_file(path)) == (file.size, file.sha256), path


# --- one writer, dead writers -------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_first(tmp_path) -> None:
    run = RunDir(tmp_path)
    write_json_atomic({"status": "running", **this_process()}, run.summary)
    second = writer_lock(run)
    with (
        writer_lock(run),
        pytest.raises(JobDirLocked, match=rf"being written by pid {os.getpid()}"),
    ):
        second.__enter__()
    with writer_lock(run):  # released: the next one gets it
        pass


def test_a_running_job_whose_process_is_gone_reads_as_killed() -> None:
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, lmexp.run.liveness as l; print(json.dumps(l.this_process()))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = {"status": "running", **json.loads(child.stdout)}  # that process has exited
    assert alive(dead) is False and effective_status(dead) == "killed"
    live = {"status": "running", **this_process()}
    assert alive(live) is True and effective_status(live) == "running"
    assert effective_status({"status": "running", "pid": 1, "host": "elsewhere"}) == "running"
    assert effective_status({"status": "completed", **json.loads(child.stdout)}) == "completed"


def test_from_another_host_a_job_is_killed_once_its_heartbeat_goes_stale(
    tmp_path, monkeypatch
) -> None:
    """A reader on a login node cannot see a compute node's processes: it reads the heartbeat.
    A real process beats, is SIGKILLed, and the reader (this process, posing as another host)
    calls it running until the beat is STALE_AFTER_S old, then killed."""
    from lmexp.run import liveness

    run = RunDir(tmp_path / "job")
    code = (
        "import json, sys, time\n"
        "from lmexp.run.liveness import Heartbeat, this_process\n"
        "with Heartbeat(sys.argv[1], every_s=0.05):\n"
        "    print(json.dumps(this_process()), flush=True)\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(run.heartbeat)], stdout=subprocess.PIPE, text=True
    )
    try:
        summary = {"status": "running", **json.loads(child.stdout.readline())}
        first = run.heartbeat.stat().st_mtime_ns
        deadline = time.monotonic() + 10
        while run.heartbeat.stat().st_mtime_ns == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.heartbeat.stat().st_mtime_ns > first  # it beats again, not only once
    finally:
        child.kill()
        child.wait()
    assert effective_status(summary, run.root) == "killed"  # on its own host: the pid is gone
    monkeypatch.setattr(liveness.socket, "gethostname", lambda: "login-node")
    assert effective_status(summary) == "running"  # no directory to read: cannot tell
    assert effective_status(summary, run.root) == "running"  # the beat is fresh
    later = time.time() + liveness.STALE_AFTER_S + 1
    monkeypatch.setattr(liveness.time, "time", lambda: later)
    assert effective_status(summary, run.root) == "killed"
    earlier_session = {**summary, "pid": summary["pid"] + 1}  # the beat is not this session's
    assert effective_status(earlier_session, run.root) == "running"
    run.heartbeat.unlink()  # a job of an older lmexp: no heartbeat, no verdict
    assert effective_status(summary, run.root) == "running"


def test_a_heartbeat_that_cannot_be_written_does_not_stop_the_job(tmp_path, caplog) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level("WARNING"):
        from lmexp.run.liveness import Heartbeat

        with Heartbeat(blocker / "heartbeat.json", every_s=0.01):  # its folder is a file
            time.sleep(0.05)
    assert "could not refresh the heartbeat" in caplog.text


# --- the record ---------------------------------------------------------------------------


def test_only_budgets_may_change_and_only_with_force() -> None:
    recorded = {"optim": {"name": "adam", "lr": 0.001}, "trainer": {"max_steps": 4}, "threads": 1}
    same_but_where = {**recorded, "threads": 8, "resume": True}  # how it runs, not what
    assert config_changes(recorded, same_but_where) == {}
    longer = {**recorded, "trainer": {"max_steps": 8}}
    with pytest.raises(ConfigChanged, match=r"trainer.max_steps: 4 -> 8.*resume=force"):
        check_relaunch(recorded, longer, force=False)
    assert check_relaunch(recorded, longer, force=True) == {"trainer.max_steps": (4, 8)}
    other = {**recorded, "optim": {"name": "sgd", "lr": 7.0}}
    with pytest.raises(ConfigChanged, match=r"optim.lr: 0.001 -> 7.0, optim.name: 'adam' -> 'sgd'"):
        check_relaunch(recorded, other, force=True)


# --- values -------------------------------------------------------------------------------

BAD_VALUES = [
    ("trainer.divergence_ppl=nan", "trainer.divergence_ppl=nan is not a number"),
    ("trainer.max_minutes=nan", "trainer.max_minutes=nan is not a number"),
    ("trainer.clip_norm=nan", "trainer.clip_norm=nan"),
    ("trainer.clip_norm=inf", "trainer.clip_norm=inf must be a finite number"),
    ("optim.lr=inf", "optim.lr=inf must be a finite number"),
    ("optim.lr=nan", "optim.lr=nan must be a finite number"),
    ("optim.eps=0", "optim.eps=0.0 must be positive"),
    ("optim.eps=nan", "optim.eps=nan must be a finite number"),
    ("optim.weight_decay=-1", "optim.weight_decay=-1.0 must be >= 0"),
    ("optim.weight_decay=inf", "optim.weight_decay=inf must be a finite number"),
    ("optim.betas=[0.9,1.5]", r"optim.betas=\[0.9, 1.5\] must be two numbers in \[0, 1\)"),
    ("optim.betas=[0.9]", r"optim.betas=\[0.9\] must be two numbers"),
    ("schedule.decay=nan", "schedule.decay=nan must be a finite number"),
    ("device=cuda:abc", "device='cuda:abc' unknown"),
    ("device=gpu", "device='gpu' unknown"),
    ("resume=maybe", "resume='maybe' unknown; choose false, true or force"),
    ("model.dropout=nan", "model.dropout=nan must be in"),
    ("data.valid_fraction=nan", r"data.valid_fraction=nan must be in \[0, 1\)"),
    ("jobs_per_gpu=0", "jobs_per_gpu=0 must be positive"),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES)
def test_every_bad_value_is_refused_at_composition_naming_the_key(
    compose, override: str, message: str
) -> None:
    from lmexp.config import to_train_config

    with pytest.raises(ValueError, match=message):
        to_train_config(compose([override]))


# --- data files ---------------------------------------------------------------------------


def test_a_symlink_loop_in_the_data_dir_is_named_not_called_missing(tmp_path) -> None:
    from lmexp.data.download import DataError
    from lmexp.data.files import ensure_files
    from lmexp.data.ptb import PTB

    loop = tmp_path / "ptb.train.txt"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match=r"ptb.train.txt is a symlink loop"):
        ensure_files(PTB, tmp_path, download=False, mirrors=[])
    (tmp_path / "ptb.valid.txt").symlink_to(tmp_path / "nowhere.txt")
    loop.unlink()
    with pytest.raises(DataError, match=r"ptb.valid.txt is a symlink to .*nowhere.txt"):
        ensure_files(PTB, tmp_path, download=False, mirrors=[])


def test_a_bad_byte_in_own_text_names_the_file(tmp_path) -> None:
    from lmexp.data import load_corpus
    from lmexp.data.download import DataError
    from lmexp.data.schema import DataConfig

    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text("a b c\nb c a\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_bytes(b"a b \xff c\n")
    cfg = DataConfig(name="text", root=str(tmp_path), download=False)
    with pytest.raises(DataError, match=r"valid.txt is not UTF-8 text"):
        load_corpus(cfg)


def test_launcher_settings_that_cannot_work_are_named() -> None:
    from lmexp.callbacks import launcher_problems

    assert launcher_problems({"n_jobs": 0}) == [
        "hydra.launcher.n_jobs=0 must be a positive integer"
    ]
    assert launcher_problems({"n_jobs": -1, "max_num_timeout": 0}) == []
    assert launcher_problems({"timeout_min": -5}, {"max_batch_size": 0}) == [
        "hydra.launcher.timeout_min=-5 must be a positive integer",
        "hydra.sweeper.max_batch_size=0 must be a positive integer",
    ]


def test_a_slurm_time_limit_whose_signal_can_come_during_start_up_is_refused() -> None:
    """SLURM may send --signal up to 60 s early: with a one-minute limit the signal can reach
    the job before it has a handler, which kills it (seen in this suite's SLURM test)."""
    from lmexp.callbacks import launcher_problems

    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    short = {"_target_": slurm, "timeout_min": 1, "signal_delay_s": 30}
    assert launcher_problems(short) == [
        "hydra.launcher.timeout_min=1 with signal_delay_s=30: SLURM may send the time-limit "
        "signal up to 60 s early, 0 s into the job, before it can save; set timeout_min>=2 or "
        "lower signal_delay_s"
    ]
    assert launcher_problems({**short, "timeout_min": 2}) == []  # the earliest: 30 s in
    assert launcher_problems({**short, "timeout_min": 3, "signal_delay_s": 120}) != []
    assert launcher_problems({**short, "timeout_min": 720, "signal_delay_s": 120}) == []
    local = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
    assert launcher_problems({**short, "_target_": local}) == []  # submitit's own exact timer


def test_partial_downloads_of_killed_fetches_are_found_but_live_ones_kept(tmp_path) -> None:
    from lmexp.data.files import STALE_PART_S, stale_parts

    old, fresh = tmp_path / ".ptb.train.txt.a1.part", tmp_path / ".ptb.train.txt.b2.part"
    old.write_bytes(b"half")
    fresh.write_bytes(b"in progress")
    hour_ago = time.time() - STALE_PART_S - 60
    os.utime(old, (hour_ago, hour_ago))
    assert stale_parts(tmp_path, "ptb.train.txt") == [old]
    assert stale_parts(tmp_path, "ptb.valid.txt") == []
