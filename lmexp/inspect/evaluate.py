"""Evaluate a finished run as the char-LM report does: sanity and normalization checks,
log-probabilities, perplexity.

    python -m lmexp.inspect.evaluate outputs/multirun/<sweep>/1-gru-adam              # test split
    python -m lmexp.inspect.evaluate <run_dir> --split valid --checkpoint last
    python -m lmexp.inspect.evaluate <run_dir> --text my_text.txt --out result.json

Prints and writes (default: <run_dir>/evaluation/<split or file>_<checkpoint>.json)

    {"sane": true, "normalizes": true, "log_prob": ..., "avg_log_prob": ..., "perplexity": ...}

plus what was evaluated (`text`, `tokens`, `checkpoint`) and the checks' largest errors. A split
is scored exactly as training-time evaluation scores it (`lmexp.training.evaluation.evaluate`:
the run's evaluation batch, seq_len windows, carried state), so its perplexity matches the run's
`test_ppl`/`val_ppl` for the same checkpoint. A text file is scored as one stream after a
sentence boundary. The checks use `--pairs` (context, continuation) pairs cut from that text.
Exit status 0 when both checks pass, 1 when one fails.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from lmexp.data import load_corpus, make_batches
from lmexp.inspect.checks import normalization_check, sample_pairs, sanity_check
from lmexp.inspect.scoring import ScoringLM, load
from lmexp.inspect.trust import add_trust_flag
from lmexp.run.rundir import RunDir
from lmexp.run.summary import write_json_atomic
from lmexp.training.evaluation import evaluate
from lmexp.training.metrics import perplexity
from lmexp.version import add_version_flag

SPLITS = ("train", "valid", "test")


def score_split(lm: ScoringLM, split: str) -> tuple[float, int, list[str]]:
    """Summed NLL, predicted tokens and the split's tokens, read as training-time evaluation."""
    cfg = lm.config
    corpus = load_corpus(cfg.data, tokenizer_file=RunDir(lm.run_dir).tokenizer)
    if corpus.vocab.itos != lm.vocab.itos:
        raise ValueError(
            f"the corpus at data.root={cfg.data.root!r} has another vocabulary than {lm.run_dir}; "
            "point LMEXP_DATA_DIR (or the run's data.root) at the data it was trained on"
        )
    ids = getattr(corpus, split)
    batches = make_batches(ids, corpus, cfg.data, train=False, device=lm.device)
    nll, count = evaluate(lm.model, batches)
    return nll, count, lm.vocab.decode(ids.tolist())


def run_checks(lm: ScoringLM, tokens: list[str], pairs: int, seed: int = 0) -> dict[str, Any]:
    """Sanity and normalization over `pairs` pairs cut from `tokens`."""
    chosen = sample_pairs(tokens, pairs, lm.seq_len, seed)
    sanity = sanity_check(lm, chosen)
    normal = normalization_check(lm, [p.context for p in chosen] + [[]])
    return {
        "sane": sanity.passed,
        "normalizes": normal.passed,
        "sanity_max_error": sanity.max_error,
        "normalization_max_error": normal.max_error,
        "pairs": len(chosen),
    }


def evaluate_run(
    run_dir: Path,
    checkpoint: str = "best",
    split: str | None = "test",
    text: Path | None = None,
    pairs: int = 5,
    device: str = "cpu",
    trust_code: bool = False,
) -> dict[str, Any]:
    """The evaluation JSON of one run (see the module docstring)."""
    lm = load(run_dir, checkpoint, device, trust_code)
    if text is not None:
        content = Path(text).read_text(encoding="utf-8")
        tokens = lm.tokens(content)
        log_prob = lm.log_prob(tokens)
        count, source = len(tokens), str(text)
    else:
        assert split is not None
        nll, count, tokens = score_split(lm, split)
        log_prob, source = -nll, split
    if count == 0:
        raise ValueError(f"{source} has no tokens to score")
    avg = log_prob / count
    result = {
        **run_checks(lm, tokens, pairs),
        "log_prob": log_prob,
        "avg_log_prob": avg,
        "perplexity": perplexity(-log_prob, count),
        "tokens": count,
        "text": source,
        "checkpoint": str(lm.checkpoint),
    }
    order = ["sane", "normalizes", "log_prob", "avg_log_prob", "perplexity"]
    return {k: result[k] for k in order} | {k: v for k, v in result.items() if k not in order}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lmexp-evaluate",
        description="Sanity/normalization checks, log-probability and perplexity of a run's "
        "checkpoint on a split or a text file (the character-level LM report's evaluation).",
    )
    parser.add_argument("run_dir", type=Path, help="a job directory of lmexp.train")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", choices=SPLITS, default=None, help="corpus split (default test)")
    source.add_argument("--text", type=Path, default=None, help="a UTF-8 text file to score")
    parser.add_argument("--checkpoint", default="best", help="best (default), last, or a .pt path")
    parser.add_argument("--pairs", type=int, default=5, help="pairs the checks use (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: in run dir)")
    add_trust_flag(parser)
    add_version_flag(parser)
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    split = None if args.text else (args.split or "test")
    try:
        result = evaluate_run(
            args.run_dir,
            args.checkpoint,
            split,
            args.text,
            args.pairs,
            args.device,
            args.trust_model_code,
        )
        name = args.text.stem if args.text else split
        out = args.out or RunDir(args.run_dir).evaluation(name, Path(args.checkpoint).stem)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(result, out)  # in one step: a refused write leaves nothing half done
    except (OSError, ValueError, KeyError) as err:  # one line: the file and what is wrong
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0 if result["sane"] and result["normalizes"] and math.isfinite(result["log_prob"]) else 1


def cli() -> None:
    """The `lmexp-evaluate` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
