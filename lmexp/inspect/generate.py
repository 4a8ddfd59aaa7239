"""Text from a trained run: greedy, temperature, top-k and top-p (nucleus) sampling.

    lmexp-generate <run_dir>                                       # 10 + 10 samples
    lmexp-generate <run_dir> --prompt "the company said" --temperature 0.8 --top-p 0.9
    lmexp-generate <run_dir> --temperature 0 --lengths 20          # greedy

CMU 10-601 HW7 §7.7: the next token is drawn from Q = softmax(g / τ), g the next-token logits; τ = 0
is greedy (argmax). `--top-k` keeps only the k most likely tokens and `--top-p` the smallest set
whose probability reaches p, both renormalised, before drawing. Without a prompt a sample
starts after the corpus's boundary token (`<eos>` for words, a space for characters, `<s>` in
sentence mode), or from a token drawn uniformly from the vocabulary (`--start random`, IFT6135 A2
§5.3). BPE pieces are shown decoded to text; in sentence mode a sample ends at its first
`</s>`. By default it writes `--num` samples of seq_len tokens and `--num` of 2 x seq_len, as
IFT6135 assignment 2 asks, to `<run_dir>/samples/`.

Recurrent models step their hidden state one token at a time. The Transformer re-reads a
sliding window of its last seq_len tokens, the context length it was trained on, at every
step; it never sees a position it was not trained at.

Every file gets its own random stream, `sample_seed(seed, length, sampling)`: a hash of the
three, so the samples of one length are not the beginnings of those of another (IFT6135 A2
§5.3 asks for 10 independent samples of each length, 20 in all) and two temperatures do not
share their draws. The same `--seed` gives the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lmexp.config import TrainConfig
from lmexp.data import Vocab
from lmexp.data.bpe import bpe_text, load_bpe
from lmexp.data.corpus import EOS_SENTENCE
from lmexp.inspect.scoring import ScoringLM, load, read_corpus_info
from lmexp.inspect.trust import add_trust_flag
from lmexp.models.base import LanguageModel
from lmexp.run.rundir import RunDir
from lmexp.version import add_version_flag


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen; temperature 0 is greedy."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0 (0 is greedy)")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k={self.top_k} must be >= 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def label(self) -> str:
        """A file-name-safe description, e.g. greedy, t0.8, t1_k50_p0.9."""
        if self.greedy:
            return "greedy"
        parts = [f"t{self.temperature:g}"]
        parts += [f"k{self.top_k}"] if self.top_k else []
        parts += [f"p{self.top_p:g}"] if self.top_p else []
        return "_".join(parts)


def next_token_probs(logits: Tensor, sampling: Sampling) -> Tensor:
    """The distribution a token is drawn from: softmax(logits / τ), cut to top-k / top-p and
    renormalised. logits (N, V) -> probabilities (N, V). Greedy: one-hot on the argmax."""
    logits = logits.float()
    if sampling.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).float()
    scaled = logits / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < scaled.size(-1):
        kth = scaled.topk(sampling.top_k, dim=-1).values[..., -1:]  # (N, 1)
        scaled = scaled.masked_fill(scaled < kth, -torch.inf)
    probs = torch.softmax(scaled, dim=-1)
    if sampling.top_p is not None and sampling.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(-1) - sorted_probs  # mass of the tokens ranked above
        drop_sorted = before >= sampling.top_p  # the top token is always kept
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def choose(logits: Tensor, sampling: Sampling, generator: torch.Generator) -> Tensor:
    """One next token per row: (N, V) logits -> (N,) ids."""
    if sampling.greedy:
        return logits.argmax(-1)
    probs = next_token_probs(logits, sampling).cpu()
    return torch.multinomial(probs, 1, generator=generator).squeeze(1).to(logits.device)


def generate(
    lm: ScoringLM,
    prompts: Sequence[Sequence[int]],
    length: int,
    sampling: Sampling,
    generator: torch.Generator,
) -> list[list[int]]:
    """Continue each prompt (ids, all the same length, at least one) by `length` tokens."""
    if length < 1:
        raise ValueError(f"length={length} must be >= 1")
    if len({len(p) for p in prompts}) != 1 or not prompts[0]:
        raise ValueError("prompts must be non-empty and of one length (batch them by length)")
    model, device = lm.model, lm.device
    tokens = torch.tensor([list(p) for p in prompts], dtype=torch.long, device=device)  # (N, P)
    stateless = model.init_state(1, device) is None
    window = lm.seq_len
    with torch.inference_mode():
        state = model.init_state(tokens.size(0), device)
        if stateless:
            logits, _ = model(tokens[:, -window:], None)
        else:  # read the prompt in training-size windows, carrying the state
            for begin in range(0, tokens.size(1), window):
                logits, state = model(tokens[:, begin : begin + window], state)
        for _ in range(length):
            nxt = choose(logits[:, -1], sampling, generator)  # (N,)
            tokens = torch.cat([tokens, nxt.unsqueeze(1)], dim=1)
            if stateless:  # a sliding window of the trained context length
                logits, _ = model(tokens[:, -window:], None)
            else:
                logits, state = model(nxt.unsqueeze(1), state)
    return tokens[:, -length:].tolist()


def sample_seed(seed: int, length: int, sampling: Sampling, tag: str = "") -> int:
    """The seed of one file's random stream: the first 8 bytes of
    sha256("<seed>/<length>/<sampling label>[/<tag>]"), so every length and sampling (and, in
    training, every epoch: the tag) draws anew."""
    key = f"{seed}/{length}/{sampling.label()}" + (f"/{tag}" if tag else "")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # torch seeds are < 2**63


def sample_during_training(
    model: LanguageModel,
    vocab: Vocab,
    config: TrainConfig,
    device: torch.device,
    run_dir: Path,
    epoch: float,
    source: str = "current",
) -> Path:
    """LING 574's text every N epochs: `trainer.sample_count` samples of seq_len tokens at
    `trainer.sample_temperature` from `model` (`source` says which weights: the best so far or
    the current ones), to `samples/during_epoch<E>.txt`. Draws from its own generator and puts
    the model back in training mode, so training goes on exactly as without it."""
    info = read_corpus_info(run_dir)
    bpe = load_bpe(RunDir(run_dir).tokenizer) if info["tokenizer"] == "bpe" else None
    was_training = model.training
    try:
        lm = ScoringLM(
            model,
            vocab,
            config,
            device,
            run_dir=run_dir,
            tokenizer=info["tokenizer"],
            start=info["start"],
            mode=info.get("mode", "stream"),
            bpe=bpe,
        )
        sampling, length = Sampling(config.trainer.sample_temperature), lm.seq_len
        stream = sample_seed(config.seed, length, sampling, tag=f"epoch{epoch:g}")
        generator = torch.Generator().manual_seed(stream)
        prompts = start_prompts(lm, None, "boundary", config.trainer.sample_count, generator)
        continuations = generate(lm, prompts, length, sampling, generator)
    finally:
        model.train(was_training)
    out = RunDir(run_dir).samples / f"during_epoch{epoch:g}.txt"
    header = (
        f"during training, epoch {epoch:g}, {source} weights: {sampling} length={length} "
        f"(stream {stream})"
    )
    write_samples(lm, out, list(zip(prompts, continuations, strict=True)), header)
    return out


def start_prompts(lm: ScoringLM, prompt: str | None, start: str, n: int, generator) -> list:
    """`n` prompts of ids: the prompt after the sentence boundary, or a start token."""
    boundary = lm.vocab.stoi[lm.start]
    if prompt:
        return [[boundary, *lm.encode(prompt)]] * n
    if start == "random":
        drawn = torch.randint(len(lm.vocab), (n,), generator=generator).tolist()
        return [[boundary, token] for token in drawn]
    return [[boundary]] * n


def render(lm: ScoringLM, ids: Sequence[int]) -> str:
    """Words joined by spaces (`<eos>`, `<s>`, `</s>` shown as they are: sentence marks);
    characters as text; BPE pieces decoded to their text, marks written out."""
    tokens = lm.vocab.decode(ids)
    if lm.tokenizer == "bpe":
        return bpe_text(lm.bpe, tokens)
    return ("" if lm.tokenizer in ("char", "ptb_char") else " ").join(tokens)


def through_sentence_end(ids: Sequence[int], end_id: int) -> list[int]:
    """The tokens up to and including the first `end_id`: a sentence-mode model was never
    trained on what follows `</s>` (padding, masked out), so a sample ends there."""
    ids = list(ids)
    return ids[: ids.index(end_id) + 1] if end_id in ids else ids


def write_samples(
    lm: ScoringLM,
    out: Path,
    samples: list[tuple[list[int], list[int]]],
    header: str,
) -> None:
    """One sample per line: [prompt] continuation; a `#` header says how they were made.
    In sentence mode a continuation stops after its first `</s>`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {header}"]
    for prompt, continuation in samples:
        if lm.mode == "sentences" and EOS_SENTENCE in lm.vocab:
            continuation = through_sentence_end(continuation, lm.vocab.stoi[EOS_SENTENCE])
        shown = render(lm, prompt[1:])  # the boundary token is not part of the prompt
        lines.append((f"[{shown}] " if shown else "") + render(lm, continuation))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lmexp-generate",
        description="Sample text from a run's checkpoint (greedy, temperature, top-k, top-p).",
    )
    parser.add_argument("run_dir", type=Path, help="a job directory of lmexp.train")
    parser.add_argument("--prompt", default=None, help="text to continue (default: none)")
    parser.add_argument(
        "--start",
        choices=("boundary", "random"),
        default="boundary",
        help="without a prompt: after the corpus's boundary token (<eos> for words, a space for "
        "characters, <s> in sentence mode; default) or from a uniformly drawn token",
    )
    parser.add_argument("--num", type=int, default=10, help="samples per length (default 10)")
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=None,
        help="tokens per sample (default: seq_len and 2 x seq_len)",
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="τ (default 1); 0 = greedy")
    parser.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    parser.add_argument("--top-p", type=float, default=None, help="nucleus: keep mass p")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--checkpoint", default="best", help="best (default), last or a .pt path")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: <run_dir>/samples")
    add_trust_flag(parser)
    add_version_flag(parser)
    args = parser.parse_args(argv)
    try:
        sampling = Sampling(args.temperature, args.top_k, args.top_p)
        if args.num < 1:
            raise ValueError(f"--num={args.num} must be >= 1")
        lm = load(args.run_dir, args.checkpoint, args.device, args.trust_model_code)
        out_dir = args.out_dir or RunDir(args.run_dir).samples
        out_dir.mkdir(parents=True, exist_ok=True)  # a file there fails now, before sampling
    except (OSError, ValueError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    lengths = args.lengths or [lm.seq_len, 2 * lm.seq_len]
    for length in lengths:
        stream = sample_seed(args.seed, length, sampling)
        generator = torch.Generator().manual_seed(stream)
        prompts = start_prompts(lm, args.prompt, args.start, args.num, generator)
        continuations = generate(lm, prompts, length, sampling, generator)
        name = f"{sampling.label()}_len{length}" + ("_prompt" if args.prompt else "")
        header = (
            f"{args.run_dir} checkpoint={Path(args.checkpoint).stem} {sampling} "
            f"length={length} seed={args.seed} (stream {stream}) prompt={args.prompt!r} "
            f"start={args.start}"
        )
        out = out_dir / f"{name}.txt"
        write_samples(lm, out, list(zip(prompts, continuations, strict=True)), header)
        print(out.read_text(encoding="utf-8"))
        print(f"wrote {out}", file=sys.stderr)
    return 0


def cli() -> None:
    """The `lmexp-generate` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
