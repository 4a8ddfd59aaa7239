"""The jobs the pre-flight check composes: a grid's points, keys written as the user wrote them."""

import math

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


def test_a_large_grid_is_checked_on_every_pair_of_values() -> None:
    import itertools

    from lmexp.preflight import MAX_CHECKED, pairwise_cover

    axes = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)], ["c0", "c1", "c2"]]
    points = list(pairwise_cover(axes))
    assert len(points) < math.prod(map(len, axes)) and len(points) <= MAX_CHECKED
    for (i, x), (j, y) in itertools.combinations(enumerate(axes), 2):
        assert {(p[i], p[j]) for p in points} == set(itertools.product(x, y))


def test_a_bad_job_beyond_the_first_256_grid_points_is_refused_up_front() -> None:
    """516 jobs; the bad ones (width 18 over 4 heads) come after the first 258 in Hydra's order."""
    import pytest

    from lmexp.config import conf_dir, register_configs
    from lmexp.preflight import InvalidConfig, check_command

    register_configs()
    grid = [
        "model=transformer",
        "model.hidden_size=16,18",
        "model.num_heads=2,4",
        "seed=range(1,130)",
    ]
    with pytest.raises(InvalidConfig, match="not divisible by model.num_heads=4"):
        check_command(str(conf_dir()), "train", grid, multirun=True)
