"""A corpus's files on disk: where they are looked for, their digests, and downloading them.

A corpus module describes its files once (`CorpusFiles`: names, sha256 digests, mirrors, where
they come from); this module finds, verifies and fetches them, and words every error so the user
knows which file is wrong and where to put the right one.
"""

from __future__ import annotations

import http.client
import logging
import os
import stat
import time
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from lmexp.data.download import DataError, fetch, sha256_file

log = logging.getLogger(__name__)

ENV_VAR = "LMEXP_DATA_DIR"

# What a failed download attempt can raise: URLError, timeouts and refused connections are
# OSErrors; http.client errors (e.g. IncompleteRead) are not; ValueError is a malformed URL.
_FETCH_ERRORS = (OSError, http.client.HTTPException, ValueError, DataError)
STALE_PART_S = 3600.0  # a .part file this old belongs to no live download (they fail in 30 s)


class FileSpec(NamedTuple):
    """One file of a corpus, as published: its name, digest and size in bytes.

    The size bounds a download (a server sending more is cut off there) and says how much of
    a short file arrived; the digest decides.
    """

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class CorpusFiles:
    """The files a corpus needs: key -> FileSpec, its mirrors, and their origin."""

    name: str  # also the folder name under $LMEXP_DATA_DIR and ./data
    files: dict[str, FileSpec]
    mirrors: list[str] = field(default_factory=list)  # base URLs serving the files as-is
    origin: str = ""  # where a user gets the files by hand, for error messages


def resolve_root(root: str | None, name: str = "ptb") -> Path:
    """The corpus folder: `root` if given, else $LMEXP_DATA_DIR/<name>, else ./data/<name>.

    The environment variable lets CI and shared machines point every run at one read-only copy
    without editing configs; the last fallback is absolute, so messages show where it looked.
    """
    if root:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser() / name
    return Path.cwd() / "data" / name


def _placement_hint(spec: CorpusFiles, root: Path) -> str:
    names = ", ".join(f.name for f in spec.files.values())
    return (
        f"Place {names} ({spec.origin}) in {root}, "
        f"or set data.root=<folder holding them>, "
        f"or set {ENV_VAR}=<dir> with the files in <dir>/{spec.name}."
    )


def _diagnose(path: Path) -> str:
    """Say how a file that failed its checksum differs, so the user knows what went wrong."""
    data = path.read_bytes()
    if not data:
        return "it is empty"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"it is not UTF-8 text ({err.reason} at byte {err.start})"
    return "its content differs: it is corrupt or a different release"


def _verify(spec: CorpusFiles, path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path} failed its checksum: {_diagnose(path)} (expected sha256 {expected}, "
            f"got {actual}). Delete it to have it downloaded again (data.download=true), "
            f"or replace it with the original file ({spec.origin})."
        )


def stale_parts(root: Path, name: str, now: float | None = None) -> list[Path]:
    """Partial downloads of `name` in `root` untouched for STALE_PART_S: a SIGKILLed fetch's.

    A fresher one may belong to a job downloading the same file right now, so it stays.
    """
    now = time.time() if now is None else now
    return [
        part
        for part in root.glob(f".{name}.*.part")
        if part.is_file() and now - part.stat().st_mtime > STALE_PART_S
    ]


def _fetch_from_mirrors(
    file: FileSpec, dest: Path, mirrors: Sequence[str], timeout: float, dead: set[str]
) -> list[str]:
    """Try each mirror in turn; return the errors met, empty when a mirror delivered the file.

    A mirror that cannot be reached at all is added to `dead` and skipped for the next files,
    so an offline machine waits for at most one timeout per mirror, not one per file.
    """
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + file.name
        if mirror in dead:
            errors.append(f"{url}: skipped, the mirror was unreachable for an earlier file")
            continue
        try:
            fetch(url, dest, file.sha256, size=file.size, timeout=timeout)
        except _FETCH_ERRORS as err:
            log.warning("could not fetch %s: %s", url, err)
            errors.append(f"{url}: {err}")
            if isinstance(err, OSError) and not isinstance(err, urllib.error.HTTPError):
                dead.add(mirror)
        else:
            return []
    return errors


def _download(
    spec: CorpusFiles, root: Path, splits: Sequence[str], mirrors: Sequence[str], timeout: float
) -> None:
    names = [spec.files[split].name for split in splits]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot create the data folder {root} ({err}). " + _placement_hint(spec, root)
        ) from err
    for name in names:
        for stale in stale_parts(root, name):
            stale.unlink(missing_ok=True)
            log.info("removed %s, left by a killed download", stale)
    dead: set[str] = set()
    failures: list[str] = []
    for split in splits:
        file = spec.files[split]
        failures += _fetch_from_mirrors(file, root / file.name, mirrors, timeout, dead)
    still_missing = [name for name in names if not (root / name).is_file()]
    if still_missing:
        tried = "\n  ".join(failures)
        raise DataError(
            f"could not download {', '.join(still_missing)} into {root}; tried:\n  {tried}\n"
            + _placement_hint(spec, root)
        )


def regular_file(path: Path) -> bool:
    """Whether `path` is a file to read; False if nothing is there. Anything else there (a
    folder, a FIFO that would block the reader for ever, a device) is a DataError."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise DataError(
            f"{path.parent} is a file, not a folder; point data.root at the folder that holds "
            "the corpus"
        ) from None
    if stat.S_ISREG(mode):
        return True
    kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a file"
    raise DataError(f"{path} is {kind}, not a corpus file; put the file itself there")


def _present(spec: CorpusFiles, root: Path) -> tuple[dict[str, Path], list[str]]:
    """Key -> path of each file of `spec` in `root`, and the keys of those missing; a broken
    symlink or something other than a file there is a DataError, found without reading."""
    paths = {key: root / file.name for key, file in spec.files.items()}
    for path in paths.values():
        if path.is_symlink() and not path.exists():  # is_file() alone would call it missing
            try:
                path.resolve(strict=True)
            except FileNotFoundError:
                raise DataError(
                    f"{path} is a symlink to {os.readlink(path)}, which does not exist"
                ) from None
            except (OSError, RuntimeError) as err:  # a loop: ELOOP, or RuntimeError (< 3.13)
                raise DataError(
                    f"{path} is a symlink loop ({err}); replace it with the file"
                ) from err
    return paths, [key for key, path in paths.items() if not regular_file(path)]


def check_files(spec: CorpusFiles, root: Path, download: bool, mirrors: Sequence[str]) -> list[str]:
    """What can be said of `spec`'s files in `root` without reading them (the pre-flight check
    of a job): refuse files that are not files, and missing ones no download will fetch;
    return the keys that a download will fetch."""
    root = Path(root)
    _, missing = _present(spec, root)
    if missing and not download:
        names = ", ".join(spec.files[key].name for key in missing)
        raise DataError(
            f"missing {names} in {root} and data.download=false. "
            + _placement_hint(spec, root)
            + " Or set data.download=true to fetch them from the mirrors."
        )
    if missing and not mirrors:
        names = ", ".join(spec.files[key].name for key in missing)
        raise DataError(
            f"missing {names} in {root} and no mirror is known for {spec.name} "
            "(data.mirrors is empty). " + _placement_hint(spec, root)
        )
    return missing


def ensure_files(
    spec: CorpusFiles,
    root: Path,
    download: bool,
    mirrors: Sequence[str],
    *,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Return file key -> path of verified files of `spec` in `root`, downloading missing ones.

    Files already present are verified first, so a corrupt local copy fails before any network
    traffic. Every file is checked against its digest on every load: a few milliseconds, and a
    silently different corpus would make every perplexity in a sweep incomparable.
    """
    root = Path(root)
    paths, _ = _present(spec, root)
    missing = check_files(spec, root, download, mirrors)
    for key, path in paths.items():
        if key not in missing:
            _verify(spec, path, spec.files[key].sha256)
    if missing:
        _download(spec, root, missing, mirrors, timeout)
    return paths
