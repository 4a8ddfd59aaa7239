"""One data folder both programs read: PTB's train split cut to about N windows, valid and test.

The peer reads `<dir>/train.txt, valid.txt, test.txt`; lmexp reads the same three files with
`data=text` (its `data=ptb` checks every file's sha256 against the released PTB, which a cut
train file fails by design). The folder also holds them as `ptb.{train,valid,test}.txt`.

Tokens are counted as both programs count them: the words of each line plus one `<eos>`
(lmexp/data/ptb.py `read_tokens`, the peer's data.py). The train file keeps the first lines
whose tokens fill `batches` windows of `BATCH` x `SEQ_LEN` (one more token per row: the last
target), so one epoch is `batches` optimizer steps in both.

The vocabularies would differ: the peer builds its dictionary from all three files, lmexp from
train only, mapping what valid and test hold beyond it to `<unk>`. So valid and test are written
with that mapping done (every line kept, same token counts): both programs then see the same
token streams over the same vocabulary, and their output layers have the same width.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from lmexp.data.ptb import PTB_FILES, ensure_files

BATCH = 20  # training streams, both programs
SEQ_LEN = 35  # truncated-BPTT window (the peer's --bptt)
EVAL_BATCH = 10  # the peer's evaluation streams, hard-coded in its main.py
UNK, EOS = "<unk>", "<eos>"
SPLITS = ("train", "valid", "test")
MANIFEST = "prepared.json"


class CorpusError(ValueError):
    """The folder cannot be prepared as asked; the message says what to change."""


@dataclass(frozen=True)
class Prepared:
    """The prepared folder and what it holds."""

    root: str
    batches: int  # windows asked for
    windows: int  # training windows one epoch has: batches, or the whole file's if fewer
    train_lines: int
    train_tokens: int
    vocab_size: int  # distinct tokens of the cut train file, <eos> included
    valid_unk: int  # valid tokens mapped to <unk> (not in the cut train file)
    test_unk: int
    source_train_sha256: str


def count_tokens(line: str) -> int:
    """Words of one line plus its `<eos>`, as lmexp's word tokenizer and the peer count."""
    return len(line.split()) + 1


def windows_of(tokens: int, batch: int = BATCH, seq_len: int = SEQ_LEN) -> int:
    """Training windows of a `tokens`-long stream cut into `batch` rows (ceil, as both do)."""
    predictable = tokens // batch - 1
    return max(0, -(-predictable // seq_len))


def cut_lines(lines: list[str], batches: int) -> list[str]:
    """The shortest prefix of `lines` whose tokens fill `batches` windows of BATCH x SEQ_LEN."""
    if batches <= 0:
        raise CorpusError(f"--batches {batches} must be positive")
    target = BATCH * (SEQ_LEN * batches + 1)
    total = 0
    for k, line in enumerate(lines):
        total += count_tokens(line)
        if total >= target:
            return lines[: k + 1]
    have = max(0, (total // BATCH - 1) // SEQ_LEN)  # full windows: what --batches can ask for
    raise CorpusError(
        f"--batches {batches} is more than the {have} windows PTB's train split holds; "
        f"use --batches {have} or fewer"
    )


def map_unknown(lines: list[str], vocab: set[str]) -> tuple[list[str], int]:
    """`lines` with every word outside `vocab` replaced by `<unk>`, and how many were."""
    mapped, unknown = [], 0
    for line in lines:
        words = line.split()
        missing = sum(w not in vocab for w in words)
        if missing:  # rewritten in PTB's own layout: one space around every word
            line = " " + " ".join(w if w in vocab else UNK for w in words) + " \n"
        mapped.append(line)
        unknown += missing
    return mapped, unknown


def _write_split(folder: Path, split: str, lines: list[str]) -> None:
    path = folder / f"{split}.txt"
    path.write_text("".join(lines), encoding="utf-8")
    os.link(path, folder / PTB_FILES[split].name)  # the same file under lmexp's PTB name


def _build(source: dict[str, Path], folder: Path, batches: int) -> Prepared:
    train = cut_lines(source["train"].read_text(encoding="utf-8").splitlines(True), batches)
    vocab = {w for line in train for w in line.split()} | {EOS}
    if UNK not in vocab:  # PTB's first lines hold <unk>; a folder without it could not map
        raise CorpusError(f"the first {len(train)} train lines hold no {UNK}; raise --batches")
    _write_split(folder, "train", train)
    unknown = {}
    for split in ("valid", "test"):
        lines = source[split].read_text(encoding="utf-8").splitlines(True)
        mapped, unknown[split] = map_unknown(lines, vocab)
        _write_split(folder, split, mapped)
    tokens = sum(count_tokens(line) for line in train)
    return Prepared(
        root=str(folder),
        batches=batches,
        windows=windows_of(tokens),
        train_lines=len(train),
        train_tokens=tokens,
        vocab_size=len(vocab),
        valid_unk=unknown["valid"],
        test_unk=unknown["test"],
        source_train_sha256=PTB_FILES["train"].sha256,  # ensure_files checked it
    )


def _reuse(folder: Path, batches: int, source_sha: str) -> Prepared | None:
    try:
        found = Prepared(**json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    names = [f"{s}.txt" for s in SPLITS] + [PTB_FILES[s].name for s in SPLITS]
    if found.batches != batches or found.source_train_sha256 != source_sha:
        return None
    if not all((folder / name).is_file() for name in names):
        return None
    return Prepared(**{**asdict(found), "root": str(folder)})


def prepare(ptb_dir: Path, out_root: Path, batches: int) -> Prepared:
    """`out_root/data-<batches>/`, built from the verified PTB in `ptb_dir` unless already there.

    Built in a temporary folder and renamed into place, so an interrupted build leaves nothing
    that passes for a prepared folder.
    """
    folder = Path(out_root) / f"data-{batches}"
    reused = _reuse(folder, batches, PTB_FILES["train"].sha256)
    if reused is not None:  # built from the pinned PTB before: the source need not be read
        return reused
    names = [name for name, *_ in PTB_FILES.values()]
    if not all((Path(ptb_dir) / name).is_file() for name in names):
        raise CorpusError(
            f"no PTB in {ptb_dir} (it needs {', '.join(names)}); pass --ptb-dir PATH to the "
            "folder holding them, or set LMEXP_DATA_DIR=<dir> with them in <dir>/ptb"
        )
    source = ensure_files(Path(ptb_dir), download=False, mirrors=[])  # sha256-checked
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".data-{batches}.", dir=out_root))
    try:
        prepared = Prepared(**{**asdict(_build(source, tmp, batches)), "root": str(folder)})
        (tmp / MANIFEST).write_text(json.dumps(asdict(prepared), indent=2), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prepared
