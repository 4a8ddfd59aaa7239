"""The suite's own promises: a child runs with default signals and dies with its test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import kill_children


def test_a_child_gets_default_signals_whatever_this_process_ignores() -> None:
    """Under `nohup` this process ignores SIGHUP; a job started by a test must not inherit it."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        shown = subprocess.run(
            [sys.executable, "-c", "import signal as s; print(s.getsignal(s.SIGHUP) is s.SIG_DFL)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    finally:
        signal.signal(signal.SIGHUP, before)
    assert shown == "True"


def test_what_a_test_started_is_killed_with_its_grandchildren() -> None:
    child = subprocess.Popen(
        ["bash", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True
    )
    grandchild = int(child.stdout.readline())
    kill_children()
    assert child.poll() is not None
    deadline = time.monotonic() + 10
    while _exists(grandchild):
        assert time.monotonic() < deadline, f"sleep {grandchild} outlived kill_children()"
        time.sleep(0.05)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of an exited parent is reaped by init; its /proc status says so meanwhile
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except FileNotFoundError:
        return False
