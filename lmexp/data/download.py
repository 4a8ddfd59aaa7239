"""Fetching one file over HTTP(S) into place atomically, verified against its sha256 digest.

Which files a corpus needs and where they are published is the corpus module's business.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


class DataError(RuntimeError):
    """A data file is missing, corrupt or unreachable; the message says which and how to fix it."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks so a large corpus never sits in memory twice."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fetch(url: str, dest: str | Path, sha256: str, timeout: float = 30.0) -> None:
    """Download `url` to `dest`, which then holds exactly the bytes whose digest is `sha256`.

    The body goes to a uniquely named temporary file in dest's folder (same filesystem, so
    `os.replace` is atomic) and replaces `dest` only once its digest matches. On any failure,
    interrupts included, the temporary file is removed and `dest` is left as it was, so a
    killed download never passes for a corpus, and two jobs fetching at once cannot clash.

    Raises:
        DataError: the body's digest differs from `sha256`.
        OSError: urllib.error.URLError, TimeoutError and the like, left to the caller, which
            knows whether another mirror is worth trying.
    """
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s -> %s", url, dest)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            digest = hashlib.sha256()
            while chunk := response.read(_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256:
            raise DataError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; "
                "the server sent a different or truncated file; try another mirror"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
