"""Fetching one file over HTTP(S) into place atomically, verified against its sha256 digest.

Which files a corpus needs and where they are published is the corpus module's business.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.request
from pathlib import Path

from lmexp.atomic import replacing
from lmexp.validation import UsageError

log = logging.getLogger(__name__)

PROGRESS_BYTES = 64 * 1024  # at least this much every `timeout` seconds, or the mirror stalled
_CHUNK_BYTES = 1 << 20
_NOT_IT = "it is not the file lmexp expects; stopped there, try another mirror"


class DataError(UsageError, RuntimeError):
    """A data file is missing, corrupt or unreachable; the message says which and how to fix it."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks so a large corpus never sits in memory twice."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fetch(
    url: str, dest: str | Path, sha256: str, size: int | None = None, timeout: float = 30.0
) -> None:
    """Download `url` to `dest`, which then holds exactly the bytes whose digest is `sha256`.

    The body goes to a uniquely named temporary file in dest's folder (same filesystem, so
    `os.replace` is atomic) and replaces `dest` only once its digest matches. On any failure,
    interrupts included, the temporary file is removed and `dest` is left as it was, so a
    killed download never passes for a corpus, and two jobs fetching at once cannot clash.
    With `size`, the file's published size, a server announcing or sending more is cut off
    there, so a wrong URL cannot fill the disk.

    Raises:
        DataError: the body is longer than `size`, or its digest differs from `sha256`.
        OSError: urllib.error.URLError, TimeoutError and the like, left to the caller, which
            knows whether another mirror is worth trying.
    """
    dest = Path(dest)
    log.info("downloading %s -> %s", url, dest)
    with (
        replacing(dest, suffix=".part") as out,
        urllib.request.urlopen(url, timeout=timeout) as response,
    ):
        announced = response.headers.get("Content-Length", "")
        if size is not None and announced.isdigit() and int(announced) > size:
            raise DataError(
                f"{url} announces {int(announced):,} bytes, more than the file's "
                f"{size:,} bytes: {_NOT_IT}"
            )
        digest = hashlib.sha256()
        # urlopen's timeout bounds each read, so a mirror that trickles a byte at a time never
        # trips it: also give up when `timeout` seconds bring less than PROGRESS_BYTES.
        progress_at, since, total = time.monotonic(), 0, 0
        read = getattr(response, "read1", response.read)  # read1: whatever has arrived
        while chunk := read(_CHUNK_BYTES):
            total += len(chunk)
            if size is not None and total > size:
                raise DataError(f"{url} sent more than the file's {size:,} bytes: {_NOT_IT}")
            digest.update(chunk)
            out.write(chunk)
            since += len(chunk)
            now = time.monotonic()
            if since >= PROGRESS_BYTES:
                progress_at, since = now, 0
            elif now - progress_at > timeout:
                raise TimeoutError(
                    f"{url} stalled: under {PROGRESS_BYTES // 1024} KiB in {timeout:.0f} s"
                )
        actual = digest.hexdigest()
        if actual != sha256:  # raised inside the block: the partial file is removed
            short = f" (only {total:,} of its {size:,} bytes)" if size and total < size else ""
            raise DataError(
                f"checksum mismatch for {url}{short}: expected sha256 {sha256}, got {actual}; "
                "the server sent a different or truncated file; try another mirror"
            )
