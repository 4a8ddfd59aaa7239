"""The `data` config group's schema: corpus location, tokenizer and truncated-BPTT batching.

Beside the corpora it configures (`registry.py` is their list), as `models/schema.py` and
`loggers/schema.py` are beside theirs; `lmexp/config.py` only composes the root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from lmexp.data.registry import CORPORA
from lmexp.validation import check_choices, require_positive

DATA_MODES = ("stream", "sentences")


@dataclass
class DataConfig:
    """Corpus location and truncated-BPTT batching."""

    name: str = "ptb"
    root: str | None = (
        None  # folder with the split files; None: $LMEXP_DATA_DIR/<name>, else ./data/<name>
    )
    download: bool = True  # fetch missing files from `mirrors` and verify their checksums
    mirrors: list[str] = field(default_factory=list)  # base URLs tried in order
    batch_size: int = 20  # contiguous streams per minibatch
    seq_len: int = 35  # truncated-BPTT window, in tokens
    eval_batch_size: int | None = None  # streams for evaluation; None: same as batch_size
    valid_fraction: float = 0.1  # text8: the end of the training text held out for validation
    tokenizer: str | None = None  # word | char | bpe (the corpus's CorpusSpec); None: its own
    mode: str = "stream"  # stream (contiguous, BPTT windows) | sentences (padded <s>...</s> rows)
    vocab_size: int = 2000  # tokenizer=bpe: pieces of the BPE model trained on train

    # key -> its allowed values: checked here, listed by `lmexp-train --help` and completion
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"mode": DATA_MODES}

    def __post_init__(self) -> None:
        require_positive(
            "data",
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            eval_batch_size=self.eval_batch_size,
            vocab_size=self.vocab_size,
        )
        spec = CORPORA.get(self.name)  # an unknown name fails where it is loaded
        if (
            spec is not None
            and self.tokenizer is not None
            and self.tokenizer not in spec.tokenizers
        ):
            raise ValueError(
                f"data.tokenizer={self.tokenizer!r} is not available for data={self.name}; "
                f"choose from {list(spec.tokenizers)}"
            )
        check_choices("data", self, self.CHOICES)
        if self.mode == "sentences" and spec is not None and spec.single_line:
            raise ValueError(
                f"data.mode=sentences needs a corpus of lines; {spec.single_line}: "
                "keep data.mode=stream"
            )
        if not 0 <= self.valid_fraction < 1:
            raise ValueError(
                f"data.valid_fraction={self.valid_fraction} must be in [0, 1): 0 trains on all "
                "of text8-100k.txt and validates on the dev slice"
            )
