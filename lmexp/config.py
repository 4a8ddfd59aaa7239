"""The root of a training job's typed config, registered in Hydra's ConfigStore.

Each config group's schema lives beside the code that reads it: `data/schema.py`,
`models/schema.py` (and each architecture's module), `training/optim.py`,
`training/schedules.py`, `training/schema.py` (the trainer), `loggers/schema.py`. This module
composes them into `TrainConfig` and holds the root's own keys. Every YAML file under `conf/`
is merged on top of these dataclasses, so a typo, an unknown key or a value of the wrong type
fails at compose time. Cross-field rules run in `__post_init__`, when `OmegaConf.to_object`
builds the objects, before any data is read or any tensor exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from omegaconf import MISSING, DictConfig, OmegaConf

from lmexp.data.schema import DataConfig
from lmexp.layout import conf_dir  # noqa: F401  (its home; lmexp.config kept it)
from lmexp.loggers.schema import LoggerConfig
from lmexp.models.registry import architecture, model_config_from_dict
from lmexp.models.schema import ArchConfig
from lmexp.training.graph import GRAPH_CHOICES
from lmexp.training.optim import OptimConfig
from lmexp.training.pruning import PruneConfig
from lmexp.training.schedules import ScheduleConfig
from lmexp.training.schema import TrainerConfig
from lmexp.validation import check_choices, require_positive

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:<index>", "mps")  # <index>: a GPU's number
RESUME_CHOICES = (False, True, "force")
PRECISIONS = ("fp32", "bf16")
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed takes (an int64 or a uint64)
CPU_ALLOCATORS = ("tuned", "system")


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
    prune: PruneConfig = field(default_factory=PruneConfig)  # stop a sweep's hopeless jobs
    seed: int = 1111
    # a sweep's repeats: each cell (a grid point, an Optuna trial) runs with the seeds seed,
    # seed+1, ..., seed+seeds-1 (`repeat_seeds`); its jobs are one cell of the report
    seeds: int = 1
    device: str = "auto"  # auto (CUDA, else MPS, else CPU) | cpu | cuda | cuda:N | mps
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    precision: str = "fp32"  # fp32 | bf16 (autocast of the forward passes; weights stay fp32)
    compile: bool = False  # torch.compile the model (needs a C++ compiler on CPU)
    cuda_graph: str = "auto"  # auto | on | off: replay the training step from a CUDA graph
    jobs_per_gpu: int = 1  # concurrent jobs sharing each GPU (launcher=joblib packs them)
    pack: int = 4  # launcher=packed: up to this many same-shape jobs trained as one model
    cpu_allocator: str = "tuned"  # tuned | system: glibc malloc keeps large blocks (allocator.py)
    # continue a job dir that already holds a run (skip it if finished); force: with new budgets
    resume: Any = False  # false | true | force

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {
        "precision": PRECISIONS,
        "cuda_graph": GRAPH_CHOICES,
        "cpu_allocator": CPU_ALLOCATORS,
    }

    def __post_init__(self) -> None:
        pattern = "|".join(c.replace("<index>", r"\d+") for c in DEVICE_CHOICES)
        if not re.fullmatch(pattern, str(self.device)):
            listed = f"{', '.join(DEVICE_CHOICES[:-1])} or {DEVICE_CHOICES[-1]}"
            raise ValueError(f"device={self.device!r} unknown; choose {listed}")
        require_positive(
            "",
            threads=self.threads,
            jobs_per_gpu=self.jobs_per_gpu,
            pack=self.pack,
            seeds=self.seeds,
        )
        low, high = SEED_RANGE
        if not low <= self.seed <= high:
            raise ValueError(
                f"seed={self.seed} is out of range; choose an integer from 0 to 2**64-1 "
                f"({high}), as torch seeds its generators with 64 bits"
            )
        if self.resume not in RESUME_CHOICES:
            raise ValueError(f"resume={self.resume!r} unknown; choose false, true or force")
        check_choices("", self, self.CHOICES)
        if getattr(self.schedule, "name", None) == "plateau" and self.trainer.eval_every is None:
            raise ValueError(
                "schedule=plateau decides each epoch's rate from the validation at the end of "
                "the epoch before: set trainer.eval_every (e.g. 1.0), not null"
            )
        if isinstance(self.model, dict):  # built from a plain dict (a saved config)
            self.model = model_config_from_dict(self.model)
        if isinstance(self.model, ArchConfig):
            self.model.check_window(self.data.seq_len)


def repeat_seeds(seed: int, seeds: int) -> list[int]:
    """The seeds of a cell's repeats: `seed` and the `seeds - 1` after it (distinct, recorded
    by each job as its `seed`)."""
    return [seed + k for k in range(seeds)]


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


def register_configs() -> None:
    """Store the schema as `base_train`, the first entry of conf/train.yaml's defaults list,
    and each architecture's as `schema/model/<name>`, the first entry of its model YAML."""
    from hydra.core.config_store import ConfigStore

    from lmexp.models import ARCHITECTURES  # imports every model module, which registers it

    store = ConfigStore.instance()
    store.store(name="base_train", node=TrainConfig)
    for name, arch in ARCHITECTURES.items():
        store.store(group="schema/model", name=name, node=arch.schema)
