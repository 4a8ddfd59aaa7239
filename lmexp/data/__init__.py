"""Corpora as id streams: pick a corpus by name, get a Corpus, batch it for truncated BPTT.

Each corpus module owns finding, verifying and encoding its files; this package maps names to them.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path

import torch
from torch import Tensor

from lmexp.data.batching import (
    Batch,
    StreamBatches,
    batchify,
    bptt_windows,
    count_targets,
    num_windows,
)
from lmexp.data.bpe import load_bpe, save_bpe
from lmexp.data.corpus import BOS, PAD, Corpus
from lmexp.data.download import DataError
from lmexp.data.registry import CORPORA, corpus_spec
from lmexp.data.schema import DataConfig
from lmexp.data.sentences import SentenceBatches, split_sentences
from lmexp.data.vocab import Vocab

for _module in pkgutil.iter_modules(__path__):  # each corpus module registers itself
    importlib.import_module(f"{__name__}.{_module.name}")

log = logging.getLogger(__name__)


def load_corpus(cfg: DataConfig, tokenizer_file: str | Path | None = None) -> Corpus:
    """Load the corpus named by `cfg.name` through its registered loader.

    With `data.tokenizer=bpe`, an existing `tokenizer_file` (a resumed or scored run's, see
    `RunDir.tokenizer`) is reused, so the ids are the ones its checkpoints were trained on;
    otherwise one is trained.
    """
    loader = corpus_spec(cfg.name).load
    bpe = None
    saved = Path(tokenizer_file) if tokenizer_file is not None else None
    if cfg.tokenizer == "bpe" and saved is not None and saved.is_file():
        bpe = load_bpe(saved)
        log.info("reusing the BPE tokenizer of %s", saved)
    try:
        return loader(cfg, bpe)
    except MemoryError:
        where = f" from {cfg.root}" if cfg.root else ""
        raise DataError(
            f"out of memory reading data={cfg.name}{where}: a corpus is encoded in memory, "
            "about 16 bytes for each byte of its text (measured for words); use a smaller "
            "corpus, or a machine with more memory"
        ) from None


Batches = StreamBatches | SentenceBatches


def as_batches(data: Tensor | Batches, seq_len: int | None = None) -> Batches:
    """Batches as they are; a (B, n) stream tensor from `batchify` read in `seq_len` windows."""
    if isinstance(data, Tensor):
        if seq_len is None:
            raise ValueError("a stream tensor needs the seq_len of its windows")
        return StreamBatches(data, seq_len)
    return data


def make_batches(
    ids: Tensor,
    corpus: Corpus,
    cfg: DataConfig,
    *,
    train: bool,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Batches:
    """One split of `corpus` batched as its mode reads it: BPTT windows over `batch_size`
    contiguous rows, or padded sentence batches (bucketed and reshuffled per epoch when
    `train`). Evaluation uses `eval_batch_size` when it is set."""
    size = cfg.batch_size if train else (cfg.eval_batch_size or cfg.batch_size)
    if corpus.mode == "stream":
        return StreamBatches(batchify(ids, size).to(device), cfg.seq_len)
    sequences, cut = split_sentences(ids, corpus.vocab.stoi[BOS], cfg.seq_len)
    if cut:
        log.warning(
            "%d of %d sentences have more than data.seq_len=%d tokens and were cut to it; "
            "raise data.seq_len to keep them whole",
            cut,
            len(sequences),
            cfg.seq_len,
        )
    pad_id = corpus.vocab.stoi[PAD]
    return SentenceBatches(sequences, size, pad_id, seed if train else None, device)


def save_corpus_tokenizer(corpus: Corpus, path: str | Path) -> None:
    """Write the corpus's BPE model (if any) to `path` (a run's `RunDir.tokenizer`)."""
    if corpus.bpe is not None:
        save_bpe(corpus.bpe, path)


__all__ = [
    "CORPORA",
    "Batch",
    "Batches",
    "SentenceBatches",
    "StreamBatches",
    "as_batches",
    "make_batches",
    "Corpus",
    "DataError",
    "Vocab",
    "batchify",
    "bptt_windows",
    "count_targets",
    "load_corpus",
    "save_corpus_tokenizer",
    "num_windows",
]
