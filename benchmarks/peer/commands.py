"""The two command lines per architecture, built to train the same model on the same data.

The peer's flags are its main.py defaults written out (200 units, 2 layers, SGD at lr 20,
clipping at 0.25, dropout 0.2, seed 1111, batch 20 x 35, evaluation batch 10) with one epoch.
lmexp's overrides set each of those to the same value, and turn off its divergence stop
(`trainer.divergence_ppl=null`): at lr 20 the RNN diverges in both, the peer trains on and
tests regardless, and a run that stopped early would time less work. Its recurrent models run
`model.impl=fused` (nn.RNN/GRU/LSTM, cuDNN or oneDNN), the layers the peer uses; its
Transformer is shaped as the peer's (d_model 200, 2 heads, feed-forward 200, 2 layers). What
cannot match is said in `Arch.notes`, which the printed table carries.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peer.corpus import BATCH, EVAL_BATCH, SEQ_LEN

WIDTH, LAYERS, LR, CLIP, DROPOUT, SEED, HEADS = 200, 2, 20.0, 0.25, 0.2, 1111, 2
RUN_DIR, PEER_SAVE = "run", "model.pt"  # what each writes inside its run's temporary folder


@dataclass(frozen=True)
class Arch:
    """One architecture: the peer's `--model` name, lmexp's overrides, what differs."""

    name: str  # lmexp's model= option
    peer_model: str
    overrides: tuple[str, ...]
    notes: str


_RECURRENT = (
    f"model.emb_size={WIDTH}",
    f"model.hidden_size={WIDTH}",
    f"model.num_layers={LAYERS}",
    f"model.dropout={DROPOUT}",
    "model.impl=fused",
)

ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("rnn", "RNN_TANH", _RECURRENT, "both nn.RNN (tanh)"),
        Arch(
            "gru",
            "GRU",
            (*_RECURRENT, "model.gru_variant=reset_after"),
            "both nn.GRU (fused needs gru_variant=reset_after)",
        ),
        Arch("lstm", "LSTM", _RECURRENT, "both nn.LSTM"),
        Arch(
            "transformer",
            "Transformer",
            (
                f"model.hidden_size={WIDTH}",  # d_model; the transformer has no emb_size
                f"model.num_layers={LAYERS}",
                f"model.num_heads={HEADS}",
                f"model.ff_size={WIDTH}",  # the peer passes --nhid as dim_feedforward
                f"model.dropout={DROPOUT}",
                "model.attn_impl=sdpa",  # the peer's nn.MultiheadAttention calls SDPA too
            ),
            "lmexp pre-LN, peer post-LN (nn.TransformerEncoderLayer); peer dropout 0.1 in its "
            "layers (nn.Transformer's default), 0.2 only on positions; peer also builds an "
            "unused 6-layer nn.TransformerDecoder; both use SDPA, lmexp with is_causal, the "
            "peer with a float -inf mask",
        ),
    )
}


def parse_archs(text: str) -> list[Arch]:
    """`rnn,gru` -> their `Arch`es, in the order given."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ARCHS]
    if unknown or not names:
        raise ValueError(f"--archs {text!r}: unknown {unknown}; choose from {list(ARCHS)}")
    return [ARCHS[n] for n in names]


def peer_command(
    arch: Arch,
    peer_dir: Path,
    data: Path,
    save: Path,
    python: str = sys.executable,
    cuda: bool = False,
) -> list[str]:
    """`python main.py ...` of the peer, saving its model to `save`."""
    cmd = [python, str(peer_dir / "main.py"), "--data", str(data), "--model", arch.peer_model]
    cmd += ["--emsize", str(WIDTH), "--nhid", str(WIDTH), "--nlayers", str(LAYERS)]
    cmd += ["--lr", f"{LR:g}", "--clip", f"{CLIP:g}", "--epochs", "1"]
    cmd += ["--batch_size", str(BATCH), "--bptt", str(SEQ_LEN), "--dropout", f"{DROPOUT:g}"]
    cmd += ["--seed", str(SEED), "--save", str(save)]
    if arch.peer_model == "Transformer":
        cmd += ["--nhead", str(HEADS)]
    if cuda:
        cmd.append("--accel")  # without it the peer stays on the CPU
    return cmd


def lmexp_overrides(
    arch: Arch,
    data: Path,
    run_dir: Path,
    threads: int | None = None,
    device: str = "cpu",
    extra: tuple[str, ...] = (),
) -> list[str]:
    """lmexp's Hydra overrides for the same run, writing its job directory to `run_dir`."""
    args = [f"model={arch.name}", *arch.overrides]
    args += ["optim=sgd", f"optim.lr={LR:g}", f"trainer.clip_norm={CLIP}"]
    args += ["data=text", "data.tokenizer=word", f"data.root={data}", "data.download=false"]
    args += [f"data.batch_size={BATCH}", f"data.eval_batch_size={EVAL_BATCH}"]
    args += [f"data.seq_len={SEQ_LEN}", "trainer.max_epochs=1", "trainer.eval_every=1.0"]
    args += ["trainer.divergence_ppl=null", f"seed={SEED}", f"device={device}"]
    args += ["trainer.progress=off"]
    if threads:
        args.append(f"threads={threads}")
    return [*args, *extra, f"hydra.run.dir={run_dir}"]


def lmexp_command(
    arch: Arch,
    data: Path,
    run_dir: Path,
    python: str = sys.executable,
    threads: int | None = None,
    device: str = "cpu",
    extra: tuple[str, ...] = (),
) -> list[str]:
    """`python -m lmexp.train ...` for the run `peer_command` makes."""
    return [
        python,
        "-m",
        "lmexp.train",
        *lmexp_overrides(arch, data, run_dir, threads, device, extra),
    ]
