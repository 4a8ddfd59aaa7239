"""The rows of the speed benchmark: what each one trains, and the plain PyTorch peer."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmexp.models import (
    ArchConfig,
    LanguageModel,
    architecture,
    build_model,
    compile_features,
    model_config_from_dict,
    names,
)
from lmexp.models.transformer import sinusoidal_positions
from lmexp.training.schema import TrainerConfig
from lmexp.training.trainer import Trainer

VOCAB, BATCH, SEQ_LEN, LAYERS = 10_000, 20, 35, 2
SIZES = {"small": 200, "medium": 650, "large": 1500}
HEADS = {"small": 4, "medium": 10, "large": 12}  # transformer heads: d_k = 50, 65, 125
LOAD_WARNING = 0.25  # cores busy with other work above which a row is flagged "under load"


@dataclass(frozen=True)
class Variant:
    """One implementation of an architecture: `model` holds the ModelConfig fields it sets."""

    name: str
    model: dict = field(default_factory=dict)
    precision: str = "fp32"
    compile: bool = False
    graph: bool = False  # the step replayed from a CUDA graph (lmexp/training/graph.py)
    baseline: bool = False
    allocator: str = "tuned"  # lmexp's cpu_allocator default; the plain baseline: "system"


def benchmarked() -> tuple[str, ...]:
    """The architectures with a plain PyTorch peer to measure against (the registry says)."""
    return tuple(name for name in names() if architecture(name).torch_layer is not None)


def variants(arch: str, with_compile: bool, cuda: bool = False) -> list[Variant]:
    """The rows of one architecture, baseline first: each implementation its schema offers,
    and on CUDA each again with its step replayed from a CUDA graph."""
    keys = {f.name for f in fields(architecture(arch).schema)}
    rows = [
        Variant("baseline", baseline=True, allocator="system"),
        Variant("baseline+malloc", baseline=True),
    ]
    if "attn_impl" in keys:  # attention: IFT6135 assignment 2's masked softmax, or the fused kernel
        rows += [
            Variant("scratch", {"attn_impl": "scratch"}),
            Variant("sdpa", {"attn_impl": "sdpa"}),
            Variant("sdpa+bf16", {"attn_impl": "sdpa"}, "bf16"),
        ]
        graphed = ["sdpa", "sdpa+bf16"]
        compiled = Variant("sdpa+compile", {"attn_impl": "sdpa"}, compile=True)
    else:  # recurrence: the assignment's equations, or the library's fused layer
        rows += [
            Variant("scratch", {"impl": "scratch"}),
            Variant("scratch+bf16", {"impl": "scratch"}, "bf16"),
        ]
        fused = {"impl": "fused"}
        if "gru_variant" in keys:  # the fused GRU is cuDNN's reset-after variant
            rows.append(Variant("scratch reset_after", {"gru_variant": "reset_after"}))
            fused = {"impl": "fused", "gru_variant": "reset_after"}
        rows += [Variant("fused", fused), Variant("fused+bf16", fused, "bf16")]
        graphed = ["scratch", "scratch+bf16", "fused"]
        compiled = Variant("scratch+compile", {"impl": "scratch"}, compile=True)
    if cuda:
        by_name = {v.name: v for v in rows}
        rows += [
            replace(
                by_name[n],
                name=n.replace("+", "+graph+", 1) if "+" in n else f"{n}+graph",
                graph=True,
            )
            for n in graphed
        ]
    return [*rows, compiled] if with_compile else rows


def config_for(arch: str, size: str, overrides: dict) -> ArchConfig:
    """The architecture at a benchmark size (width; Transformer heads and feed-forward)."""
    width = SIZES[size]
    values = {"emb_size": width, "hidden_size": width, "num_layers": LAYERS}
    values |= {"num_heads": HEADS[size], "ff_size": 4 * width}  # kept where the schema has them
    return model_config_from_dict({"name": arch, **values, **overrides})


def train_flops_per_token(cfg: ArchConfig, seq_len: int = SEQ_LEN) -> float:
    """6 x forward multiply-adds per token (forward 2 MACs -> FLOPs, backward twice that).

    The multiply-adds are the matmuls only (they are nearly all of the arithmetic), as the
    architecture's schema counts them (`forward_macs_per_token`).
    """
    return 6.0 * cfg.forward_macs_per_token(VOCAB, seq_len)


class PlainRecurrent(nn.Module):
    """The standard recipe: embedding -> nn.RNN/GRU/LSTM -> linear, nothing else."""

    def __init__(self, layer: type[nn.RNNBase], width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, width)
        self.recurrent = layer(width, width, num_layers=LAYERS, batch_first=True)
        self.output = nn.Linear(width, VOCAB)

    def forward(self, tokens: Tensor, state):
        x, state = self.recurrent(self.embedding(tokens), state)
        return self.output(x), state


class PlainTransformer(nn.Module):
    """The standard recipe: embedding + positions -> nn.TransformerEncoder (causal) -> linear."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.width = width
        self.embedding = nn.Embedding(VOCAB, width)
        self.register_buffer("positions", sinusoidal_positions(SEQ_LEN, width), persistent=False)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, VOCAB)

    def forward(self, tokens: Tensor, state=None):
        length = tokens.shape[1]
        x = self.embedding(tokens) * math.sqrt(self.width) + self.positions[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        x = self.encoder(x, mask=mask, is_causal=True)
        return self.output(self.norm(x)), None


def _baseline_step(arch: str, size: str, device: torch.device) -> Callable[[Tensor, Tensor], None]:
    width, layer = SIZES[size], architecture(arch).torch_layer
    hidden: Any = None
    if layer is not None and issubclass(layer, nn.RNNBase):
        model: nn.Module = PlainRecurrent(layer, width).to(device)
        zeros = torch.zeros(LAYERS, BATCH, width, device=device)
        hidden = (zeros, zeros.clone()) if issubclass(layer, nn.LSTM) else zeros
    elif layer is nn.TransformerEncoderLayer:
        model = PlainTransformer(width, HEADS[size]).to(device)
    else:
        raise ValueError(f"{arch} has no plain PyTorch baseline; choose from {benchmarked()}")
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    state = {"h": hidden}

    def step(inputs: Tensor, targets: Tensor) -> None:
        logits, state["h"] = model(inputs, LanguageModel.detach_state(state["h"]))
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()

    return step


def _lmexp_step(
    cfg: ArchConfig, variant: Variant, device: torch.device, streams: Tensor
) -> Callable[[Tensor, Tensor], None]:
    model = build_model(cfg, VOCAB).to(device)
    trainer = Trainer(
        compile_features(model) if variant.compile else model,
        torch.optim.SGD(model.parameters(), lr=1.0),
        lambda epoch: 1.0,
        streams,
        streams[:, : SEQ_LEN + 1],
        SEQ_LEN,
        TrainerConfig(max_steps=1, clip_norm=0.25, checkpoint_every=None, progress="off"),
        on_eval=lambda point: None,
        precision=variant.precision,
        cuda_graph=variant.graph,
    )
    state = {"h": model.init_state(BATCH, device)}

    def step(inputs: Tensor, targets: Tensor) -> None:
        state["h"] = trainer.train_step(inputs, targets, state["h"])

    return step


def windows_for(device: torch.device, n: int) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """Random token streams and their `n` (inputs, targets) windows (the same in every worker)."""
    torch.manual_seed(0)
    streams = torch.randint(VOCAB, (BATCH, n * SEQ_LEN + 1), device=device)
    starts = range(0, n * SEQ_LEN, SEQ_LEN)
    windows = [(streams[:, i : i + SEQ_LEN], streams[:, i + 1 : i + SEQ_LEN + 1]) for i in starts]
    return streams, windows


def step_for(arch: str, size: str, variant: Variant, device: torch.device, streams: Tensor):
    if variant.baseline:
        return _baseline_step(arch, size, device)
    return _lmexp_step(config_for(arch, size, variant.model), variant, device, streams)
