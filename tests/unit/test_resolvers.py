"""The machine-sized resolvers, and the launcher and sweep presets that use them, compose."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from lmexp import resolvers
from lmexp.config import register_configs, to_train_config
from tests.conftest import CONF_DIR

LAUNCHERS = sorted(p.stem for p in (CONF_DIR / "launcher").glob("*.yaml"))
SEARCHED_MODELS = ("rnn", "gru", "lstm", "transformer")  # those with a search space


@pytest.fixture(autouse=True)
def _registered() -> None:
    register_configs()
    resolvers.register_resolvers()


def _compose(overrides: list[str]):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def _convert(cfg: DictConfig):
    """The job's TrainConfig, as inside a job: HydraConfig set, the `hydra` node removed."""
    HydraConfig.instance().set_config(cfg)
    task = cfg.copy()
    with open_dict(task):
        del task["hydra"]
    return to_train_config(task)


def _machine(monkeypatch, cores: int, gpus: int) -> None:
    monkeypatch.setattr(resolvers, "cpu_cores", lambda: cores)
    monkeypatch.setattr(resolvers, "gpu_count", lambda: gpus)


@pytest.mark.parametrize(
    ("cores", "gpus", "jobs"), [(2, 0, 1), (1, 0, 1), (16, 0, 8), (16, 4, 4), (2, 8, 8)]
)
def test_parallel_jobs_one_per_gpu_else_half_the_cores(monkeypatch, cores, gpus, jobs) -> None:
    _machine(monkeypatch, cores, gpus)
    assert resolvers.parallel_jobs() == jobs
    assert resolvers.parallel_jobs(3) == (3 * gpus if gpus else jobs)


@pytest.mark.parametrize(
    ("n_jobs", "threads"), [(1, 16), (2, 8), (3, 5), (16, 1), (64, 1), (-1, 1), (-9, 2), (None, 2)]
)
def test_threads_per_job_share_the_cores(monkeypatch, n_jobs, threads) -> None:
    _machine(monkeypatch, 16, 0)
    assert resolvers.threads_per_job(n_jobs) == threads


def test_register_resolvers_twice_is_harmless() -> None:
    resolvers.register_resolvers()
    resolvers.register_resolvers()
    cfg = OmegaConf.create({"jobs": "${lmexp.parallel_jobs:}", "t": "${lmexp.threads_per_job:1}"})
    assert cfg.jobs >= 1 and cfg.t == resolvers.cpu_cores()


def test_sqlite_url_is_absolute_and_creates_the_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolvers.sqlite_url("a/b/s.db") == f"sqlite:///{tmp_path}/a/b/s.db"
    assert (tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_preset_composes_and_converts(launcher: str) -> None:
    cfg = _compose([f"launcher={launcher}"])
    OmegaConf.resolve(cfg.hydra.launcher)
    assert _convert(cfg).model.name == "lstm"


def test_joblib_preset_bounds_the_jobs(monkeypatch) -> None:
    _machine(monkeypatch, 16, 0)
    cfg = _compose(["launcher=joblib"])
    assert cfg.hydra.launcher.n_jobs == 8 and cfg.hydra.launcher.backend == "loky"
    _machine(monkeypatch, 16, 2)
    assert cfg.hydra.launcher.n_jobs == 2  # one per GPU


@pytest.mark.parametrize(("gpus", "per_gpu", "jobs", "threads"), [(1, 9, 9, 1), (2, 3, 6, 2)])
def test_jobs_per_gpu_packs_that_many_jobs_on_each_gpu(
    monkeypatch, gpus, per_gpu, jobs, threads
) -> None:
    _machine(monkeypatch, 16, gpus)
    cfg = _compose(["launcher=joblib", f"jobs_per_gpu={per_gpu}"])
    assert cfg.hydra.launcher.n_jobs == jobs
    assert _convert(cfg).threads == threads and _convert(cfg).jobs_per_gpu == per_gpu
    _machine(monkeypatch, 16, 0)  # no GPU: the CPU rule, whatever jobs_per_gpu says
    assert cfg.hydra.launcher.n_jobs == 8
    capped = _compose(["launcher=submitit_local", f"jobs_per_gpu={per_gpu}"])
    _machine(monkeypatch, 16, gpus)
    assert capped.hydra.sweeper.max_batch_size == jobs


def test_submitit_local_preset_caps_the_batch(monkeypatch) -> None:
    _machine(monkeypatch, 16, 0)
    cfg = _compose(["launcher=submitit_local"])
    assert cfg.hydra.sweeper.max_batch_size == 8
    assert cfg.hydra.launcher.cpus_per_task == 2
    assert cfg.hydra.launcher.gpus_per_node is None


def test_submitit_local_with_optuna_caps_through_the_trials_per_batch(monkeypatch) -> None:
    _machine(monkeypatch, 16, 0)
    cfg = _compose(
        ["launcher=submitit_local", "sweep=optuna", "model=gru", "hydra.sweeper.n_jobs=2"]
    )
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.lmexp_search.OptunaSearch"
    assert cfg.hydra.launcher.cpus_per_task == 8


def test_slurm_preset_asks_for_one_gpu_per_job_and_requeues() -> None:
    launcher = _compose(["launcher=slurm"]).hydra.launcher
    assert launcher.gpus_per_node == 1 and launcher.max_num_timeout > 0
    assert launcher.array_parallelism >= 1 and launcher.timeout_min > 0


@pytest.mark.parametrize(
    ("launcher", "per_gpu", "gpus", "gres"),
    [
        ("slurm", 1, 1, None),  # a whole GPU per job
        ("slurm", 4, None, "shard:1"),  # the cluster has 4 shards per GPU
        ("slurm_mps", 1, 1, None),
        ("slurm_mps", 4, None, "mps:25"),  # SLURM counts 100 mps per GPU
        ("slurm_mps", 3, None, "mps:33"),
    ],
)
def test_jobs_per_gpu_under_slurm_asks_for_a_share_of_a_gpu(
    tmp_path, launcher, per_gpu, gpus, gres
) -> None:
    from submitit.slurm.slurm import _make_sbatch_string

    settings = _compose([f"launcher={launcher}", f"jobs_per_gpu={per_gpu}"]).hydra.launcher
    assert settings.gpus_per_node == gpus and settings.gres == gres
    # the lines submitit writes into the job's sbatch script from them
    sbatch = _make_sbatch_string(command="true", folder=tmp_path, gpus_per_node=gpus, gres=gres)
    lines = set(sbatch.splitlines())
    assert ("#SBATCH --gpus-per-node=1" in lines) == (gpus == 1)
    assert (f"#SBATCH --gres={gres}" in lines) == (gres is not None)


def test_more_jobs_per_gpu_than_mps_can_split_is_refused() -> None:
    with pytest.raises(Exception, match="jobs_per_gpu=101 under MPS leaves less than 1%"):
        OmegaConf.resolve(_compose(["launcher=slurm_mps", "jobs_per_gpu=101"]).hydra.launcher)


@pytest.mark.parametrize("launcher", ["slurm", "slurm_mps", "submitit_local"])
def test_requeueing_launchers_resume_their_jobs(launcher: str) -> None:
    # a job requeued after a timeout runs again in its own job dir: it must continue, not refuse
    assert _convert(_compose([f"launcher={launcher}"])).resume is True
    assert _convert(_compose(["launcher=joblib"])).resume is False


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "slurm"])
def test_launcher_presets_set_threads_per_job(monkeypatch, launcher: str) -> None:
    _machine(monkeypatch, 16, 0)
    expected = {"joblib": 2, "submitit_local": 2, "slurm": 4}[launcher]
    assert _convert(_compose([f"launcher={launcher}"])).threads == expected


def test_a_threads_override_still_wins_over_the_preset() -> None:
    assert _convert(_compose(["launcher=joblib", "threads=3"])).threads == 3


@pytest.mark.parametrize("model", SEARCHED_MODELS)
def test_every_optuna_search_composes(model: str, tmp_path) -> None:
    storage = f"hydra.sweeper.storage=sqlite:///{tmp_path}/s.db"
    cfg = _compose(["sweep=optuna", f"model={model}", storage])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.lmexp_search.OptunaSearch"
    assert sweeper.direction == "minimize" and sweeper.sampler.seed is not None
    assert sweeper.study_name == f"ift6135_a2_table2_{model}"
    searched = set(sweeper.params)
    assert {"optim.lr", "model.hidden_size", "model.num_layers", "model.dropout"} <= searched
    assert {"data.seq_len", "data.batch_size"} <= searched
    assert sweeper.params["optim.lr"].startswith("tag(log")
    # a trial that failed fails the command at its end, as in a grid (issue 26: it exited 0)
    assert cfg.hydra.callbacks.sweep_summary.fail_on_error is True
    config = _convert(cfg)
    assert config.model.name == model and config.optim.name == "adam"


def test_default_study_storage_is_a_stable_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _compose(["sweep=optuna", "model=gru"]).hydra.sweeper.storage
    assert storage == f"sqlite:///{tmp_path}/outputs/optuna/ift6135_a2_table2_gru.db"


@pytest.mark.parametrize(
    ("launcher", "store"),
    [
        ([], "sqlite:///{tmp}/outputs/optuna/ift6135_a2_table2_gru.db"),
        (["launcher=joblib"], "sqlite:///{tmp}/outputs/optuna/ift6135_a2_table2_gru.db"),
        # sqlite's locks break on a cluster's shared filesystem: a journal file there
        (["launcher=slurm"], "journal://{tmp}/outputs/optuna/ift6135_a2_table2_gru.journal"),
    ],
)
def test_a_search_on_slurm_keeps_its_study_in_a_journal_file(
    tmp_path, monkeypatch, launcher, store
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _compose(["sweep=optuna", "model=gru", *launcher]).hydra.sweeper.storage
    assert storage == store.format(tmp=tmp_path)
    assert (tmp_path / "outputs" / "optuna").is_dir()
