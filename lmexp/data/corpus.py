"""What every corpus loader returns: a vocabulary, each split as one id stream, and how text
outside the corpus (prompts, scored text) is to be split and started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from lmexp.data.vocab import Vocab

EOS = "<eos>"  # closes every line of a word-level corpus
UNK = "<unk>"  # what a word outside the vocabulary becomes
BOS = "<s>"  # sentence mode: opens every line
EOS_SENTENCE = "</s>"  # sentence mode: closes every line
PAD = "<pad>"  # sentence mode: fills a batch row after its sentence ended; never a target
MODES = ("stream", "sentences")


@dataclass
class Corpus:
    """A vocabulary and each split as one stream of ids, ready for `batchify`.

    `tokenizer` (word | char | ptb_char | bpe), `mode` and `start` (the token a sequence begins
    after: a sentence end or start, or a word boundary) travel to the run directory, so scoring
    and generation split and start text as the corpus was. In sentence mode every split is
    `<s> ... </s>` lines back to back, which `SentenceBatches` cuts apart again. `bpe` is the
    trained subword model (a `tokenizers.Tokenizer`), saved beside the vocabulary.
    """

    vocab: Vocab
    train: Tensor  # (N_train,) torch.long
    valid: Tensor  # (N_valid,) torch.long
    test: Tensor  # (N_test,) torch.long
    tokenizer: str = "word"
    start: str = EOS
    mode: str = "stream"
    bpe: Any = None

    def counts(self) -> dict[str, int]:
        """Tokens per split, <eos> included: what a data report or a sanity check compares."""
        return {"train": self.train.numel(), "valid": self.valid.numel(), "test": self.test.numel()}
