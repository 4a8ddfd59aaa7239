"""Each session of a job files what it ran on (lmexp/runtime/environment.py) in the run dir.

`.lmexp/environment.json` holds one entry per session (the first start, each resume), so a
job resumed on another machine or after a code change says so; an uncommitted diff is kept
once per content as `.lmexp/code-<digest>.diff`. The summary carries the headline fields
(`lmexp_version`, `git_commit`, `git_dirty`, `packages_sha256`) for the tables.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from lmexp.atomic import replacing
from lmexp.run.rundir import RunDir
from lmexp.run.summary import UnreadableFile, read_json_file, write_json_atomic
from lmexp.runtime.environment import environment

log = logging.getLogger(__name__)


def record_environment(run: RunDir) -> dict[str, Any]:
    """Append this session's environment to the job's record; return the summary's fields."""
    env, diff = environment()
    digest = env["git"]["diff_sha256"]
    if diff and digest and not run.code_diff(digest).exists():
        with replacing(run.code_diff(digest), "w", encoding="utf-8") as f:
            f.write(diff)
    sessions: list[Any] = []
    if run.environment.exists():
        try:
            sessions = list(read_json_file(run.environment).get("sessions", []))
        except (UnreadableFile, AttributeError):  # damaged: the new record starts over
            log.warning("%s is unreadable; this session's environment starts it again", run)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    sessions.append({"started_at": started, **env})
    write_json_atomic({"sessions": sessions}, run.environment)
    return {
        "lmexp_version": env["lmexp"],
        "git_commit": env["git"]["commit"],
        "git_dirty": env["git"]["dirty"],
        "packages_sha256": env["packages_sha256"],
    }
