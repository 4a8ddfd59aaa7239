"""The jobs the pre-flight check composes: a grid's points, keys written as the user wrote them."""

from lmexp.preflight import job_overrides


def test_grid_points_keep_the_add_prefix_once() -> None:
    jobs = list(job_overrides(["+model.kwargs.width=8,16", "optim=sgd"], multirun=True))
    assert jobs == [
        ["optim=sgd", "+model.kwargs.width=8"],
        ["optim=sgd", "+model.kwargs.width=16"],
    ]


def test_force_add_and_delete_keys_are_not_doubled() -> None:
    jobs = list(job_overrides(["++seed=1,2", "~trackers"], multirun=True))
    assert jobs == [["~trackers", "++seed=1"], ["~trackers", "++seed=2"]]


def test_sampled_parameters_are_left_to_the_search() -> None:
    jobs = list(job_overrides(["optim.lr=interval(0.001, 0.1)", "seed=1,2"], multirun=True))
    assert jobs == [["seed=1"], ["seed=2"]]


def test_an_override_that_does_not_parse_is_left_to_hydra() -> None:
    assert list(job_overrides(["optim.lr=interval(0.1)"], multirun=True)) == []
