"""Downloading against a real local HTTP server: success, checksum mismatch, offline, fallback."""

from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lmexp.data import DataError
from lmexp.data.download import fetch, sha256_file
from lmexp.data.ptb import PTB_FILES, ensure_files
from tests.conftest import require_data_dir

TIMEOUT_S = 5.0  # bounds every request, so a hung server fails the test instead of hanging it
Serve = Callable[[Path], str]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the request log out of pytest's output."""


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reach 127.0.0.1 directly even where CI sets http_proxy."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start HTTP servers on free loopback ports, each serving a folder; return its base URL."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT_S)


def _dead_url() -> str:
    """A loopback URL where nothing listens: the port was free a moment ago, so it refuses."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _real_ptb_dir() -> Path:
    """The shared PTB copy (see tests/conftest.py)."""
    return require_data_dir() / "ptb"


@pytest.fixture(scope="module")
def ptb_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder to serve, holding copies of the real PTB files."""
    source = _real_ptb_dir()
    site = tmp_path_factory.mktemp("ptb_site")
    for name, *_ in PTB_FILES.values():
        shutil.copyfile(source / name, site / name)
    return site


def _no_temp_files(folder: Path) -> bool:
    return not any(p.name.endswith(".part") for p in folder.iterdir())


def test_fetch_writes_a_verified_file(serve: Serve, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    payload = b"hello corpus\n" * 1000
    (site / "small.txt").write_bytes(payload)
    dest = tmp_path / "dest" / "small.txt"
    dest.parent.mkdir()
    digest = hashlib.sha256(payload).hexdigest()
    fetch(serve(site) + "small.txt", dest, digest, timeout=TIMEOUT_S)
    assert dest.read_bytes() == payload
    assert sha256_file(dest) == digest
    assert _no_temp_files(dest.parent)


def test_fetch_checksum_mismatch_keeps_dest_untouched(serve: Serve, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "small.txt").write_bytes(b"tampered\n")
    dest = tmp_path / "small.txt"
    dest.write_bytes(b"previous\n")
    url = serve(site) + "small.txt"
    expected = hashlib.sha256(b"original\n").hexdigest()
    with pytest.raises(DataError) as info:
        fetch(url, dest, expected, timeout=TIMEOUT_S)
    message = str(info.value)
    assert url in message and expected in message
    assert hashlib.sha256(b"tampered\n").hexdigest() in message
    assert dest.read_bytes() == b"previous\n"
    assert _no_temp_files(tmp_path)


def test_ensure_files_downloads_all_three(serve: Serve, ptb_site: Path, tmp_path: Path) -> None:
    root = tmp_path / "nested" / "ptb"
    paths = ensure_files(root, download=True, mirrors=[serve(ptb_site)], timeout=TIMEOUT_S)
    assert set(paths) == set(PTB_FILES)
    for split, (name, digest, _) in PTB_FILES.items():
        assert paths[split] == root / name
        assert sha256_file(paths[split]) == digest
    assert sorted(p.name for p in root.iterdir()) == sorted(f.name for f in PTB_FILES.values())


def test_wrong_file_on_server_is_rejected(serve: Serve, ptb_site: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(ptb_site, site)
    (site / "ptb.train.txt").write_text(" a different corpus \n", encoding="utf-8")
    root = tmp_path / "ptb"
    with pytest.raises(DataError, match="checksum mismatch") as info:
        ensure_files(root, download=True, mirrors=[serve(site)], timeout=TIMEOUT_S)
    assert PTB_FILES["train"].sha256 in str(info.value)
    assert not (root / "ptb.train.txt").exists()
    assert _no_temp_files(root)


def test_offline_error_names_files_and_where_to_put_them(tmp_path: Path) -> None:
    root = tmp_path / "ptb"
    dead = _dead_url()
    with pytest.raises(DataError) as info:
        ensure_files(root, download=True, mirrors=[dead], timeout=TIMEOUT_S)
    message = str(info.value)
    for name, *_ in PTB_FILES.values():
        assert name in message
        assert not (root / name).exists()
    assert dead in message and str(root) in message
    assert "LMEXP_DATA_DIR" in message and "data.root" in message
    assert _no_temp_files(root)


@pytest.mark.parametrize("first", ["dead", "404"])
def test_falls_back_to_the_next_mirror(
    first: str, serve: Serve, ptb_site: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty_site"
    empty.mkdir()
    first_url = _dead_url() if first == "dead" else serve(empty)
    root = tmp_path / "ptb"
    mirrors = [first_url, serve(ptb_site)]
    paths = ensure_files(root, download=True, mirrors=mirrors, timeout=TIMEOUT_S)
    for split, (_, digest, _) in PTB_FILES.items():
        assert sha256_file(paths[split]) == digest
    assert _no_temp_files(root)
