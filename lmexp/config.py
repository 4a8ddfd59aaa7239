"""Typed config schema for a training job, registered in Hydra's ConfigStore.

Every YAML file under `conf/` is merged on top of these dataclasses, so a typo, an unknown key or a
value of the wrong type fails at compose time. Cross-field rules run in `__post_init__`, when
`OmegaConf.to_object` builds the objects, before any data is read or any tensor exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass

from omegaconf import MISSING, DictConfig, OmegaConf

MODEL_NAMES = ("rnn", "gru", "lstm", "transformer", "rnn_attn")
OPTIM_NAMES = ("sgd", "sgd_schedule", "adam")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
# corpus -> the tokenizers it can be read with; the first is its default (data.tokenizer=null)
CORPUS_TOKENIZERS = {
    "ptb": ("word", "bpe"),
    "ptb_char": ("char",),
    "text8": ("char",),
    "text": ("word", "char", "bpe"),
}
DATA_MODES = ("stream", "sentences")


def _require_positive(section: str, **values: float | int | None) -> None:
    prefix = f"{section}." if section else ""
    for key, value in values.items():
        if value is not None and value <= 0:
            raise ValueError(f"{prefix}{key}={value} must be positive; set {prefix}{key}=<n > 0>")


@dataclass
class DataConfig:
    """Corpus location and truncated-BPTT batching."""

    name: str = "ptb"
    root: str | None = (
        None  # folder with the split files; None: $LMEXP_DATA_DIR/<name>, else ./data/<name>
    )
    download: bool = True  # fetch missing files from `mirrors` and verify their checksums
    mirrors: list[str] = field(default_factory=list)  # base URLs tried in order
    batch_size: int = 20
    seq_len: int = 35
    eval_batch_size: int | None = None  # streams for evaluation; None: same as batch_size
    valid_fraction: float = 0.1  # text8: the end of the training text held out for validation
    tokenizer: str | None = None  # word | char | bpe (CORPUS_TOKENIZERS); None: the corpus's own
    mode: str = "stream"  # stream (contiguous, BPTT windows) | sentences (padded <s>...</s> rows)
    vocab_size: int = 2000  # tokenizer=bpe: pieces of the BPE model trained on train

    def __post_init__(self) -> None:
        _require_positive(
            "data",
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            eval_batch_size=self.eval_batch_size,
            vocab_size=self.vocab_size,
        )
        allowed = CORPUS_TOKENIZERS.get(self.name)
        if allowed is not None and self.tokenizer is not None and self.tokenizer not in allowed:
            raise ValueError(
                f"data.tokenizer={self.tokenizer!r} is not available for data={self.name}; "
                f"choose from {list(allowed)}"
            )
        if self.mode not in DATA_MODES:
            raise ValueError(f"data.mode={self.mode!r} unknown; choose from {list(DATA_MODES)}")
        if self.mode == "sentences" and self.name == "text8":
            raise ValueError(
                "data.mode=sentences needs a corpus of lines; text8 is one line of 100,000 "
                "characters: keep data.mode=stream"
            )
        if not 0 < self.valid_fraction < 1:
            raise ValueError(
                f"data.valid_fraction={self.valid_fraction} must be between 0 and 1 (exclusive)"
            )


@dataclass
class ModelConfig:
    """One schema for every architecture; keys an architecture does not use are ignored by it."""

    name: str = MISSING
    emb_size: int = 200  # recurrent models: input embedding width
    hidden_size: int = 200  # recurrent: hidden units per layer; transformer: d_model
    num_layers: int = 2
    dropout: float = 0.0  # on non-recurrent connections only; the seed's dp_keep_prob = 1 - dropout
    nonlinearity: str = "tanh"  # rnn only: tanh | relu
    num_heads: int = 1  # transformer only
    ff_size: int = 2048  # transformer only: width of the position-wise feed-forward layer
    max_len: int = 512  # transformer: longest window; rnn_attn: earlier outputs attention reaches
    d_k: int | None = None  # rnn_attn: query/key size; None: hidden_size
    d_v: int | None = None  # rnn_attn: value size; None: hidden_size
    tie_weights: bool = False  # share embedding and output matrices (Press & Wolf, 2017)
    impl: str = "scratch"  # rnn/gru/lstm: scratch (the seed's equations) | fused (nn.RNN/GRU/LSTM)
    gru_variant: str = "reset_before"  # gru: reset_before (seed eq. 7) | reset_after (cuDNN's)
    attn_impl: str = "scratch"  # transformer: scratch (seed's masked softmax) | sdpa (fused kernel)

    def __post_init__(self) -> None:
        if self.name == MISSING:  # the bare schema, before a model/ option is merged in
            return
        if self.name not in MODEL_NAMES:
            raise ValueError(f"model.name={self.name!r} unknown; choose from {list(MODEL_NAMES)}")
        _require_positive(
            "model",
            emb_size=self.emb_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            ff_size=self.ff_size,
            max_len=self.max_len,
            d_k=self.d_k,
            d_v=self.d_v,
        )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"model.dropout={self.dropout} must be in [0, 1); "
                "it is a drop probability (the seed's dp_keep_prob=0.35 is model.dropout=0.65)"
            )
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"model.nonlinearity={self.nonlinearity!r}; choose tanh or relu")
        for key, choices in (
            ("impl", ("scratch", "fused")),
            ("gru_variant", ("reset_before", "reset_after")),
            ("attn_impl", ("scratch", "sdpa")),
        ):
            if getattr(self, key) not in choices:
                raise ValueError(
                    f"model.{key}={getattr(self, key)!r} unknown; choose from {list(choices)}"
                )
        if self.name == "gru" and self.impl == "fused" and self.gru_variant != "reset_after":
            raise ValueError(
                "model.impl=fused runs nn.GRU, which applies the reset gate after the recurrent "
                "matmul (cuDNN's variant), not the seed's eq. (7): set model.gru_variant="
                "reset_after, or keep model.impl=scratch for the seed's GRU"
            )
        if self.name == "rnn_attn" and self.num_layers != 1:
            raise ValueError(
                f"model.num_layers={self.num_layers}: rnn_attn is seed 003's one-layer RNN with "
                "self-attention; set model.num_layers=1"
            )
        if self.name == "transformer" and self.hidden_size % self.num_heads != 0:
            raise ValueError(
                f"model.hidden_size={self.hidden_size} not divisible by "
                f"model.num_heads={self.num_heads}; pick a width that is a multiple of the heads"
            )
        if self.tie_weights and self.name != "transformer" and self.emb_size != self.hidden_size:
            raise ValueError(
                f"model.tie_weights=true needs model.emb_size ({self.emb_size}) == "
                f"model.hidden_size ({self.hidden_size})"
            )


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule."""

    name: str = MISSING
    lr: float = MISSING
    decay: float = 1.15  # sgd_schedule: lr is divided by this after each epoch
    flat_epochs: int = 0  # sgd_schedule: epochs at the initial lr before decay starts
    compounding: bool = False  # sgd_schedule: the course scaffold's lr *= (1/decay)**(epoch - flat)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam
    eps: float = 1e-8  # adam
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if MISSING in (self.name, self.lr):  # the bare schema, before an optim/ option is merged
            return
        if self.name not in OPTIM_NAMES:
            raise ValueError(f"optim.name={self.name!r} unknown; choose from {list(OPTIM_NAMES)}")
        _require_positive("optim", lr=self.lr, decay=self.decay)
        if self.flat_epochs < 0:
            raise ValueError(f"optim.flat_epochs={self.flat_epochs} must be >= 0")


@dataclass
class TrainerConfig:
    """Budgets (the first one reached ends the run), clipping and evaluation cadence."""

    max_epochs: float | None = 1.0  # may be fractional: 0.5 = half an epoch
    max_steps: int | None = None  # optimizer steps
    max_tokens: int | None = None  # training tokens (batch_size * seq_len per full window)
    max_sequences: int | None = None  # training windows (batch_size per step), seed 003's budget
    max_minutes: float | None = None  # wall-clock budget per job, evaluation included
    clip_norm: float | None = 0.25  # global gradient-norm clip; null turns clipping off
    eval_every: float = 1.0  # fraction of an epoch between evaluations (0.25: four per epoch)
    eval_every_budget: float | None = None  # also every this fraction of the step budget (0.1)
    checkpoint_every: int | None = 500  # steps between checkpoints/last.pt (also after each eval)
    divergence_ppl: float | None = 1.0e5  # a train/val perplexity above it ends the run: diverged
    progress: str = "auto"  # auto (a bar only on a terminal) | on | off

    def __post_init__(self) -> None:
        _require_positive(
            "trainer",
            max_epochs=self.max_epochs,
            max_steps=self.max_steps,
            max_tokens=self.max_tokens,
            max_sequences=self.max_sequences,
            max_minutes=self.max_minutes,
            clip_norm=self.clip_norm,
            checkpoint_every=self.checkpoint_every,
            divergence_ppl=self.divergence_ppl,
        )
        budgets = (
            self.max_epochs,
            self.max_steps,
            self.max_tokens,
            self.max_sequences,
            self.max_minutes,
        )
        if all(b is None or math.isinf(b) for b in budgets):
            raise ValueError(
                "no finite budget: set at least one of trainer.max_epochs, trainer.max_steps, "
                "trainer.max_tokens, trainer.max_sequences or trainer.max_minutes"
            )
        if self.eval_every_budget is not None and not 0.0 < self.eval_every_budget <= 1.0:
            raise ValueError(
                f"trainer.eval_every_budget={self.eval_every_budget} must be in (0, 1]: "
                "a fraction of the step budget (0.1: every 10 %)"
            )
        if not 0.0 < self.eval_every <= 1.0:
            raise ValueError(
                f"trainer.eval_every={self.eval_every} must be in (0, 1]: a fraction of an epoch"
            )
        if self.progress not in ("auto", "on", "off"):
            raise ValueError(f"trainer.progress={self.progress!r}; choose auto, on or off")


@dataclass
class TrainConfig:
    """The root config of one job."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 1111
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    precision: str = "fp32"  # fp32 | bf16 (autocast of the forward passes; weights stay fp32)
    compile: bool = False  # torch.compile the model (needs a C++ compiler on CPU)
    cpu_allocator: str = "tuned"  # tuned | system: glibc malloc keeps large blocks (allocator.py)
    resume: bool = False  # continue a job dir that already holds a run (skip it if finished)

    def __post_init__(self) -> None:
        if self.device.split(":")[0] not in DEVICE_CHOICES:
            raise ValueError(
                f"device={self.device!r} unknown; choose auto, cpu, cuda or cuda:<index>"
            )
        _require_positive("", threads=self.threads)
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r} unknown; choose fp32 or bf16")
        if self.cpu_allocator not in ("tuned", "system"):
            raise ValueError(
                f"cpu_allocator={self.cpu_allocator!r} unknown; choose tuned or system"
            )
        if self.model.max_len < self.data.seq_len and self.model.name == "transformer":
            raise ValueError(
                f"data.seq_len={self.data.seq_len} exceeds model.max_len={self.model.max_len}; "
                "raise model.max_len"
            )


def _reject_unknown_keys(node: DictConfig, schema: type, path: str) -> None:
    # `+model.new_key=...` is merged by Hydra even into a typed node; refuse it here instead of
    # silently training without the setting the user thought they changed.
    known = {f.name: f for f in fields(schema)}
    for key in node:
        full = f"{path}.{key}" if path else str(key)
        if key not in known:
            raise ValueError(f"unknown config key {full!r}; valid keys here: {sorted(known)}")
        child_type = known[key].type
        child = node[key]
        if isinstance(child, DictConfig) and isinstance(child_type, str):
            child_type = globals().get(child_type)
        if isinstance(child, DictConfig) and is_dataclass(child_type):
            _reject_unknown_keys(child, child_type, full)


def to_train_config(cfg: DictConfig) -> TrainConfig:
    """Turn a composed config into a validated `TrainConfig` (all checks run here)."""
    _reject_unknown_keys(cfg, TrainConfig, "")
    config = OmegaConf.to_object(cfg)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"expected a TrainConfig, got {type(config).__name__}")
    return config


def register_configs() -> None:
    """Store the schema as `base_train`, the first entry of conf/train.yaml's defaults list."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_train", node=TrainConfig)
