"""Typed config schema for a training job, registered in Hydra's ConfigStore.

Every YAML file under `conf/` is merged on top of these dataclasses, so a typo, an unknown key or a
value of the wrong type fails at compose time. Cross-field rules run in `__post_init__`, when
`OmegaConf.to_object` builds the objects, before any data is read or any tensor exists.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import MISSING, DictConfig, OmegaConf

from lmexp.loggers.schema import LoggerConfig
from lmexp.models.registry import architecture, model_config_from_dict
from lmexp.models.schema import ArchConfig
from lmexp.training.graph import GRAPH_CHOICES
from lmexp.training.optim import OPTIMIZERS
from lmexp.training.schedules import SCHEDULES
from lmexp.validation import check_choices, require_choice, require_finite, require_positive

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # and cuda:<index>
DATA_MODES = ("stream", "sentences")
PRECISIONS = ("fp32", "bf16")
CPU_ALLOCATORS = ("tuned", "system")
PROGRESS_MODES = ("auto", "on", "off")


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
        # Imported here: lmexp.data's corpus modules import this module for DataConfig.
        from lmexp.data.registry import CORPORA

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


@dataclass
class OptimConfig:
    """The optimizer and its initial learning rate (the schedule is `ScheduleConfig`)."""

    name: str = MISSING  # lmexp.training.optim.OPTIMIZERS
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam
    eps: float = 1e-8  # adam
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if MISSING in (self.name, self.lr):  # the bare schema, before an optim/ option is merged
            return
        require_choice("optim.name", self.name, OPTIMIZERS)
        require_finite("optim", lr=self.lr, eps=self.eps, weight_decay=self.weight_decay)
        require_positive("optim", lr=self.lr, eps=self.eps)
        if self.weight_decay < 0:
            raise ValueError(f"optim.weight_decay={self.weight_decay} must be >= 0")
        betas = list(self.betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"optim.betas={betas} must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]"
            )


@dataclass
class ScheduleConfig:
    """How the learning rate moves from epoch to epoch; any optimizer takes any schedule."""

    name: str = "constant"  # lmexp.training.schedules.SCHEDULES: constant | decay
    decay: float = 1.15  # decay: lr is divided by this after each epoch
    flat_epochs: int = 0  # decay: epochs at the initial lr before the decay starts
    compounding: bool = False  # decay: the course scaffold's lr *= (1/decay)**(epoch - flat)

    def __post_init__(self) -> None:
        require_choice("schedule", self.name, SCHEDULES)
        require_finite("schedule", decay=self.decay)
        require_positive("schedule", decay=self.decay)
        if self.flat_epochs < 0:
            raise ValueError(f"schedule.flat_epochs={self.flat_epochs} must be >= 0")


@dataclass
class TrainerConfig:
    """Budgets (the first one reached ends the run), clipping and evaluation cadence."""

    max_epochs: float | None = 1.0  # may be fractional: 0.5 = half an epoch
    max_steps: int | None = None  # optimizer steps
    max_tokens: int | None = None  # training tokens (batch_size * seq_len per full window)
    max_sequences: int | None = None  # training windows (batch_size a step): CMU 10-601 HW7
    max_minutes: float | None = None  # wall-clock budget per job, evaluation included
    clip_norm: float | None = 0.25  # global gradient-norm clip; null turns clipping off
    eval_every: float = 0.25  # fraction of an epoch between evaluations (1.0: once per epoch)
    eval_every_budget: float | None = None  # also every this fraction of the step budget (0.1)
    checkpoint_every: int | None = 500  # steps between checkpoints/last.pt (also after each eval)
    divergence_ppl: float | None = 1.0e5  # a train/val perplexity above it ends the run: diverged
    progress: str = "auto"  # auto (a bar only on a terminal) | on | off
    sample_every: float | None = None  # epochs between samples written during training

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"progress": PROGRESS_MODES}

    def __post_init__(self) -> None:
        require_positive(
            "trainer",
            sample_every=self.sample_every,
            max_epochs=self.max_epochs,
            max_steps=self.max_steps,
            max_tokens=self.max_tokens,
            max_sequences=self.max_sequences,
            max_minutes=self.max_minutes,
            clip_norm=self.clip_norm,
            checkpoint_every=self.checkpoint_every,
            divergence_ppl=self.divergence_ppl,
        )
        require_finite("trainer", clip_norm=self.clip_norm)
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
        check_choices("trainer", self, self.CHOICES)


@dataclass
class TrainConfig:
    """The root config of one job."""

    data: DataConfig = field(default_factory=DataConfig)
    # The architecture's own schema (lmexp.models: one per `model=` option), chosen by
    # conf/model/<name>.yaml's defaults list; ArchConfig documents the keys all of them have.
    model: Any = MISSING
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)  # trackers besides the record
    seed: int = 1111
    device: str = "auto"  # auto (CUDA, else MPS, else CPU) | cpu | cuda | cuda:N | mps
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    precision: str = "fp32"  # fp32 | bf16 (autocast of the forward passes; weights stay fp32)
    compile: bool = False  # torch.compile the model (needs a C++ compiler on CPU)
    cuda_graph: str = "auto"  # auto | on | off: replay the training step from a CUDA graph
    jobs_per_gpu: int = 1  # concurrent jobs sharing each GPU (launcher=joblib packs them)
    cpu_allocator: str = "tuned"  # tuned | system: glibc malloc keeps large blocks (allocator.py)
    # continue a job dir that already holds a run (skip it if finished); force: with new budgets
    resume: Any = False  # false | true | force

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {
        "precision": PRECISIONS,
        "cuda_graph": GRAPH_CHOICES,
        "cpu_allocator": CPU_ALLOCATORS,
    }

    def __post_init__(self) -> None:
        if not re.fullmatch("|".join(DEVICE_CHOICES) + r"|cuda:\d+", str(self.device)):
            raise ValueError(
                f"device={self.device!r} unknown; choose auto, cpu, cuda, cuda:<index> or mps"
            )
        require_positive("", threads=self.threads, jobs_per_gpu=self.jobs_per_gpu)
        if self.resume not in (False, True, "force"):
            raise ValueError(f"resume={self.resume!r} unknown; choose false, true or force")
        check_choices("", self, self.CHOICES)
        if isinstance(self.model, dict):  # built from a plain dict (a saved config)
            self.model = model_config_from_dict(self.model)
        if isinstance(self.model, ArchConfig):
            self.model.check_window(self.data.seq_len)


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
        if full == "model" and isinstance(child, DictConfig):
            child_type = architecture(str(child.get("name"))).schema
        elif isinstance(child, DictConfig) and isinstance(child_type, str):
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


def conf_dir() -> Path:
    """The YAML tree: inside the package in a wheel (lmexp/conf), else the checkout's conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if (packaged / "train.yaml").is_file() else packaged.parent.parent / "conf"


def register_configs() -> None:
    """Store the schema as `base_train`, the first entry of conf/train.yaml's defaults list,
    and each architecture's as `schema/model/<name>`, the first entry of its model YAML."""
    from hydra.core.config_store import ConfigStore

    from lmexp.models import ARCHITECTURES  # imports every model module, which registers it

    store = ConfigStore.instance()
    store.store(name="base_train", node=TrainConfig)
    for name, arch in ARCHITECTURES.items():
        store.store(group="schema/model", name=name, node=arch.schema)
