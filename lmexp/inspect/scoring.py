"""A finished run as a language model you can query: `lmexp.load(run_dir)`.

    import lmexp
    lm = lmexp.load("outputs/multirun/<sweep>/1-gru-adam")           # best checkpoint, CPU
    lm.next_log_probs("the company said")     # (V,) log-probabilities of the next token
    lm.log_prob("it expects", context="the company said")          # float, natural log

Every query is read as one token sequence `[start] + context + continuation`, where `start` is
the corpus's boundary token (`<eos>` for PTB: the text begins after a sentence ended; a space
for text8: after a word ended; `<s>` in sentence mode), and text is split with the corpus's
tokenizer (corpus.json; a BPE run's own tokenizer.json). The
model reads it exactly as the training-time evaluation reads a split: windows of `seq_len`
tokens aligned at the first token, the hidden state carried from window to window for recurrent
models, each window scored on its own by the Transformer. So `log_prob` of a text equals the sum
of `next_log_probs` along it, and both match
`lmexp.training.evaluation.evaluate` on the same stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmexp.config import TrainConfig
from lmexp.data import Vocab
from lmexp.data.bpe import load_bpe
from lmexp.data.corpus import EOS, UNK
from lmexp.data.tokenizers import TOKENIZERS, split_text
from lmexp.inspect.trust import check_saved_model, without_working_directory
from lmexp.models import LanguageModel, build_model
from lmexp.run.checkpoint import CheckpointError, load_checkpoint, load_state
from lmexp.run.record import read_recorded_config
from lmexp.run.rundir import CHECKPOINTS, RunDir
from lmexp.run.summary import read_json_file
from lmexp.runtime.device import resolve_device
from lmexp.validation import first_line

Text = str | Sequence[str]  # raw text (tokenized like the corpus) or a list of tokens


def config_from_dict(
    saved: dict, source: object = "the run", trust_code: bool = False
) -> TrainConfig:
    """The TrainConfig a run recorded; keys added since then take their defaults.

    A saved config is data from wherever the run came from: it may choose no code unless
    `trust_code` (lmexp/inspect/trust.py).
    """
    check_saved_model(saved, source, trust_code)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), saved)
        with without_working_directory():
            config = OmegaConf.to_object(merged)  # a trusted custom model's class is imported
    except OmegaConfBaseException as exc:  # a value of the wrong type, an unknown key
        where = f" at {exc.full_key}" if getattr(exc, "full_key", None) else ""
        raise ValueError(
            f"{source}: its saved config is not lmexp's ({first_line(exc)}{where})"
        ) from None
    except (ValueError, TypeError) as exc:  # a schema's own check (one line already)
        raise ValueError(f"{source}: its saved config is refused ({first_line(exc)})") from None
    assert isinstance(config, TrainConfig)
    return config


class ScoringLM:
    """A trained model in eval mode with its vocabulary: next-token distributions and log-probs.

    Attributes: `model`, `vocab`, `config` (the run's TrainConfig), `device`, `run_dir`,
    `checkpoint` (the file read) and `start` (the token every query begins with).
    """

    def __init__(
        self,
        model: LanguageModel,
        vocab: Vocab,
        config: TrainConfig,
        device: torch.device,
        run_dir: Path | None = None,
        checkpoint: Path | None = None,
        tokenizer: str = "word",
        start: str = EOS,
        mode: str = "stream",
        bpe: Any = None,
    ) -> None:
        self.model = model.eval()
        self.vocab, self.config, self.device = vocab, config, device
        self.run_dir, self.checkpoint = run_dir, checkpoint
        self.seq_len = config.data.seq_len
        self.tokenizer, self.start, self.mode, self.bpe = tokenizer, start, mode, bpe
        if self.start not in vocab:
            raise ValueError(f"the vocabulary has no {self.start!r} to start a query with")

    def tokens(self, text: Text) -> list[str]:
        """Raw text split as the corpus files are (words: a newline closes a sentence with
        <eos>, or `</s> <s>` in sentence mode; characters: one token each; BPE: the run's
        pieces); a list of tokens is taken as it is."""
        if isinstance(text, str):
            return split_text(text, self.tokenizer, self.bpe, self.mode)
        return list(text)

    def encode(self, text: Text) -> list[int]:
        """Token ids; words outside the vocabulary become <unk>."""
        return self.vocab.encode(self.tokens(text))

    def _log_probs(self, inputs: list[int]) -> torch.Tensor:
        """log p(· | inputs[:i+1]) for every position i: (len(inputs), V), float32 on CPU.

        Windows of seq_len from position 0, state carried (recurrent) or not (Transformer),
        exactly as `evaluate` reads a stream.
        """
        ids = torch.tensor(inputs, dtype=torch.long, device=self.device).unsqueeze(0)  # (1, N)
        out = []
        with torch.inference_mode():
            state = self.model.init_state(1, self.device)
            for begin in range(0, ids.size(1), self.seq_len):
                logits, state = self.model(ids[:, begin : begin + self.seq_len], state)
                out.append(torch.log_softmax(logits[0].float(), dim=-1).cpu())  # (T, V)
        return torch.cat(out)

    def next_log_probs(self, context: Text = "") -> np.ndarray:
        """Log-probabilities (natural log) of every vocabulary entry as the next token: (V,)."""
        inputs = [self.vocab.stoi[self.start], *self.encode(context)]
        return self._log_probs(inputs)[-1].numpy()

    def token_log_probs(self, continuation: Text, context: Text = "") -> np.ndarray:
        """log p(token | everything before it) for each token of `continuation`: (n,)."""
        prefix = [self.vocab.stoi[self.start], *self.encode(context)]
        targets = self.encode(continuation)
        if not targets:
            return np.zeros(0)
        sequence = prefix + targets
        log_probs = self._log_probs(sequence[:-1])[len(prefix) - 1 :]  # rows predicting targets
        picked = log_probs.gather(1, torch.tensor(targets).unsqueeze(1)).squeeze(1)
        return picked.double().numpy()

    def log_prob(self, continuation: Text, context: Text = "") -> float:
        """log p(continuation | context), natural log, summed over the continuation's tokens."""
        return float(self.token_log_probs(continuation, context).sum())


def read_corpus_info(run_dir: Path) -> dict[str, str]:
    """The run's corpus.json (tokenizer, start); runs written before it existed were PTB words."""
    path = RunDir(run_dir).corpus
    if not path.is_file():
        return {"tokenizer": "word", "start": EOS}
    info = read_json_file(path)
    if not isinstance(info, dict):
        raise ValueError(f"{path} is not lmexp's corpus.json (not a JSON object)")
    tokenizer, start = info.get("tokenizer"), info.get("start")
    if tokenizer not in TOKENIZERS or not isinstance(start, str):
        raise ValueError(
            f"{path} is not lmexp's corpus.json: it names tokenizer={tokenizer!r} "
            f"(lmexp's: {', '.join(TOKENIZERS)}) and start={start!r}"
        )
    return info


def find_checkpoint(run_dir: Path, checkpoint: str | Path) -> Path:
    """`best`/`last` inside the run's checkpoints/ folder, or a path to a .pt file."""
    run = RunDir(run_dir)
    path = run.checkpoint(str(checkpoint)) if str(checkpoint) in CHECKPOINTS else Path(checkpoint)
    if not path.is_file():
        present = sorted(p.name for p in run.checkpoints.glob("*.pt"))
        raise FileNotFoundError(
            f"no checkpoint {path}; this run has {present or 'none'} "
            f"(choose checkpoint= one of {list(CHECKPOINTS)} or a .pt path)"
        )
    return path


def load(
    run_dir: str | Path,
    checkpoint: str | Path = "best",
    device: str = "cpu",
    trust_code: bool = False,
) -> ScoringLM:
    """Open a finished (or interrupted) run: its model from `checkpoint`, vocabulary and config.

    Args:
        run_dir: a job directory (holds `vocab.json` and `checkpoints/`).
        checkpoint: "best" (lowest validation perplexity), "last", or a path to a .pt file.
        device: "cpu", "cuda", "cuda:N" or "auto".
        trust_code: import the class a `model=custom` run names (off: such a run is refused;
            a run directory is data and must not choose code).
    """
    run_dir = Path(run_dir)
    vocab_file = RunDir(run_dir).vocab
    if not vocab_file.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a run directory of lmexp.train: it has no {vocab_file.name}"
        )
    path = find_checkpoint(run_dir, checkpoint)
    target = resolve_device(device)
    payload = load_checkpoint(path, map_location=target, needs=("model",))
    # the job's record is its config; a run from before lmexp kept one has the checkpoint's
    recorded = read_recorded_config(RunDir(run_dir))
    saved = recorded if recorded is not None else payload.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"{path} holds no config, and {run_dir} no record: not a run of lmexp"
        )
    config = config_from_dict(saved, path if recorded is None else run_dir, trust_code)
    vocab = Vocab.from_json(vocab_file)
    if UNK in vocab:  # words outside the vocabulary then map to it, as in the corpus files
        vocab = Vocab(vocab.itos, unk=UNK)
    with without_working_directory():
        model = build_model(config.model, len(vocab)).to(target)
    load_state(model, payload, "model", path)
    corpus = read_corpus_info(run_dir)
    bpe = load_bpe(RunDir(run_dir).tokenizer) if corpus["tokenizer"] == "bpe" else None
    return ScoringLM(
        model,
        vocab,
        config,
        target,
        run_dir=run_dir,
        checkpoint=path,
        tokenizer=corpus["tokenizer"],
        start=corpus["start"],
        mode=corpus.get("mode", "stream"),
        bpe=bpe,
    )


__all__ = [
    "ScoringLM",
    "config_from_dict",
    "find_checkpoint",
    "load",
]
