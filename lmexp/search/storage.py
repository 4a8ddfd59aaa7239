"""Where a search keeps its Optuna study: `hydra.sweeper.storage` read as one of three stores.

- `sqlite:///<path>` (the default on one machine): a file, one writer at a time.
- `journal:///<path>` (the default under `launcher=slurm`): Optuna's JournalStorage on a file,
  each change appended under a lock file (a symlink, atomic on NFS). Several search processes,
  on several hosts of a shared filesystem, can work on one study at once; sqlite's locks break
  there (optuna#815, #6036).
- Any other SQLAlchemy URL, e.g. `postgresql+psycopg://user@host:5432/db`: a database server,
  for studies shared beyond one filesystem. PostgreSQL needs its driver, `pip install
  'lmexp[postgres]'` (psycopg 3; SQLAlchemy >= 2.1 also reads a plain `postgresql://` with it).

`null` keeps the study in memory, for one invocation. Every failure to open a store is one line
naming the store (its password hidden) before any trial starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmexp.resolvers import JOURNAL_SCHEME
from lmexp.validation import UsageError, first_line


class StudyStorageError(UsageError, ValueError):
    """The study's storage cannot be opened, or is not an Optuna study store."""


def shown(storage: str | None) -> str:
    """The storage as logs and errors show it: a URL's password replaced by ***."""
    if storage is None:
        return "in memory"
    if "://" not in storage or storage.startswith(JOURNAL_SCHEME):
        return storage
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: shown as given, it has no password
        return storage


def journal_path(storage: str) -> Path | None:
    """The file of a `journal:///<path>` storage; None for any other."""
    if not storage.startswith(JOURNAL_SCHEME):
        return None
    return Path(storage.removeprefix(JOURNAL_SCHEME)).expanduser().resolve()


def open_storage(storage: str | None) -> Any:
    """What `optuna.create_study(storage=...)` takes for `hydra.sweeper.storage`.

    A journal file's folder is created; an RDB URL is connected to here, so a server that is
    down or a missing driver stops the search in one line before any trial.
    """
    if storage is None:
        return None
    path = journal_path(storage)
    if path is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except (OSError, ValueError, KeyError) as exc:  # unreadable, or not a journal
            raise not_a_journal(storage, exc) from None
    if "://" not in storage:
        raise StudyStorageError(
            f"hydra.sweeper.storage={storage} is not a storage URL: give sqlite:///<path>.db, "
            "journal:///<path>.journal, a database URL such as postgresql://user@host/db, "
            "or null for a study in memory"
        )
    return _rdb_storage(storage)


def not_a_journal(storage: str, exc: BaseException) -> StudyStorageError:
    """The one-line error for a journal file that cannot be read (Optuna reads it lazily)."""
    return StudyStorageError(
        f"hydra.sweeper.storage={storage} cannot be read as an Optuna journal "
        f"({first_line(exc)}): move it aside to start a new study, or point "
        "hydra.sweeper.storage at the right file"
    )


def _rdb_storage(url: str) -> Any:
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        return RDBStorage(url)
    except ImportError as exc:  # the URL's driver (psycopg, pymysql...) is missing
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None)
        fix = "pip install 'lmexp[postgres]'" if url.startswith("postgres") else "install it"
        raise StudyStorageError(
            f"hydra.sweeper.storage={shown(url)} needs the database driver {missing!r}, "
            f"which is not installed here: {fix}"
        ) from None
    except ArgumentError as exc:
        raise StudyStorageError(
            f"hydra.sweeper.storage={shown(url)} is not a database URL SQLAlchemy can read "
            f"({first_line(exc)}): e.g. sqlite:///outputs/study.db or "
            "postgresql://user@host:5432/db"
        ) from None
    except SQLAlchemyError as exc:
        cause = first_line(getattr(exc, "orig", None) or exc)
        if url.startswith("sqlite"):
            hint = (
                "it is corrupt, truncated or not a study database. Move it aside to start a "
                "new study, or point hydra.sweeper.storage at the right file"
            )
        else:
            hint = "check that the server is up and the URL's host, port, user and database"
        raise StudyStorageError(
            f"hydra.sweeper.storage={shown(url)} cannot be opened as an Optuna study "
            f"({cause}): {hint}"
        ) from None
