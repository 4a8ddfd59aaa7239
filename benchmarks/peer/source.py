"""Where the peer's code is: a checkout the user names, or three files fetched at a pinned commit.

The peer is PyTorch's own `word_language_model/` example (pytorch/examples). It is never copied
into this repository: `--peer-dir` (or `$LMEXP_PEER_DIR`) names a checkout, or `--fetch`
downloads `main.py`, `model.py` and `data.py` at `COMMIT` into a git-ignored cache. Fetched
files are checked against the digests pinned below, so a benchmark always times the same peer,
and a changed or truncated file is refused before anything runs it.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path

from lmexp.data.download import DataError, fetch, sha256_file

COMMIT = "77f55b912142e11fcfdf5b530231fb9c52f181e8"  # pytorch/examples main, 2025-08-25
SHORT = COMMIT[:7]
FOLDER = "word_language_model"
BASE_URL = f"https://raw.githubusercontent.com/pytorch/examples/{COMMIT}/{FOLDER}"
ENV_VAR = "LMEXP_PEER_DIR"
DEFAULT_CACHE = Path("outputs/peer") / f"{FOLDER}-{SHORT}"
TIMEOUT_S = 30.0

# file -> sha256 of word_language_model/<file> at COMMIT (git show COMMIT:<path> | sha256sum)
FILES: dict[str, str] = {
    "main.py": "391de12bb7c6e07dbb105d47d017632bf80c01d2e5b25adbf83da9cdcdd5a862",
    "model.py": "e4451a33e9b16953004bc639d736d14f42a2b21f2939ccabe4cff10d3c40b74c",
    "data.py": "15784815a6bd18e9b25eadf6ae049915f88d4fb8faebeba9d83ae6ec8e19883d",
}


class PeerError(RuntimeError):
    """The peer cannot be found, fetched or run; the message says what was wrong and the fix."""


def _holds_example(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES)


def resolve_peer_dir(path: str | Path) -> Path:
    """The `word_language_model/` folder of `path`: a pytorch/examples checkout or that folder."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise PeerError(
            f"peer dir {root} does not exist; point --peer-dir (or ${ENV_VAR}) at a "
            f"pytorch/examples checkout or its {FOLDER}/ folder"
        )
    for folder in (root, root / FOLDER):
        if _holds_example(folder):
            return folder.resolve()
    raise PeerError(
        f"peer dir {root} holds no {', '.join(FILES)} (nor does {root / FOLDER}); point "
        f"--peer-dir (or ${ENV_VAR}) at a pytorch/examples checkout or its {FOLDER}/ folder"
    )


def fetch_file(url: str, dest: Path, sha256: str, timeout: float = TIMEOUT_S) -> None:
    """Download `url` to `dest` only if its bytes have digest `sha256`; else keep nothing.

    lmexp's own verified download (`lmexp.data.download.fetch`: a temporary file renamed into
    place once its digest matches, removed on any failure), with the peer's advice on errors.
    """
    try:
        fetch(url, dest, sha256, timeout=timeout)
    except DataError as err:  # the digest differs
        raise PeerError(
            f"refused {url}: its sha256 is not the pinned {sha256} of {FOLDER}/{dest.name} at "
            f"pytorch/examples@{SHORT}; nothing was kept. Check --peer-base-url, or pass "
            f"--peer-dir PATH to a checkout at {SHORT}"
        ) from err
    except (OSError, ValueError, http.client.HTTPException) as err:  # network, timeouts, URL
        raise PeerError(
            f"could not download {url} ({err}); check the network or --peer-base-url, "
            f"or pass --peer-dir PATH to a pytorch/examples checkout"
        ) from err


def fetch_peer(
    cache: str | Path = DEFAULT_CACHE, base_url: str = BASE_URL, timeout: float = TIMEOUT_S
) -> Path:
    """`cache` holding the three verified files, downloading each one that is missing or wrong."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    for name, digest in FILES.items():
        dest = cache / name
        if dest.is_file() and sha256_file(dest) == digest:
            continue
        fetch_file(f"{base_url.rstrip('/')}/{name}", dest, digest, timeout)
    return cache.resolve()


def find_peer(
    peer_dir: str | None,
    fetch: bool,
    cache: str | Path = DEFAULT_CACHE,
    base_url: str = BASE_URL,
) -> Path:
    """The peer's folder: `peer_dir`, else `$LMEXP_PEER_DIR`, else fetched when `fetch`."""
    chosen = peer_dir or os.environ.get(ENV_VAR)
    if chosen:
        return resolve_peer_dir(chosen)
    if fetch:
        return fetch_peer(cache, base_url)
    raise PeerError(
        f"no peer to run: pass --peer-dir PATH (or set {ENV_VAR}) to a pytorch/examples "
        f"checkout, or --fetch to download {FOLDER}/ at {SHORT} into {cache}"
    )
