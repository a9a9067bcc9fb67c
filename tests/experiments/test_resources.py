"""Memory estimates: the documented entry counts, the largest part's parameter, the run cap."""

from __future__ import annotations

import math

import pytest

from lazylab.experiments import SpecError
from lazylab.experiments.resources import (MAX_RUNS, MEMORY_VARIABLE, _dense_dual,
                                           check_resources, memory_limit, run_memory)
from lazylab.experiments.spec import parse_spec
from lazylab.models._tangent_dual import use_dense


def test_population_random_features_is_three_dual_matrices():
    total, parameter, advice = run_memory("quadratic", {"dim": 100}, "random_features",
                                          {"width": 1000}, None, 1000)
    assert total == 8 * (3 * 100 ** 2 + 1000 * 101 + 3 * 1000 ** 2)
    assert parameter == "width" and "streaming" in advice


def test_kernel_switches_from_cholesky_to_falkon_like_the_regime():
    small, parameter, advice = run_memory("single_neuron", {"dim": 10}, "kernel", {}, 20_000, 10)
    assert small == 8 * (4 * 10 + 20_010 * 11 + 2 * 20_000 ** 2)
    assert parameter == "n_train" and "falkon" in advice
    large, _, _ = run_memory("single_neuron", {"dim": 10}, "kernel", {}, 40_000, 10)
    centers = math.ceil(5 * math.sqrt(40_000))
    assert large == 8 * (4 * 10 + 40_010 * 11 + 40_000 * centers + 2 * centers ** 2)
    assert large < small  # FALKON above 2·10⁴ samples


def test_neural_tangent_direct_features_or_matrix_free_cg():
    direct, parameter, advice = run_memory("quadratic", {"dim": 50}, "neural_tangent",
                                           {"width": 100, "solver": "direct"}, 10_000, 100)
    assert direct == 8 * (3 * 50 ** 2 + 10_100 * 51 + 2 * 10_000 * (100 * 50 + 100))
    assert '"cg"' in advice
    cg, _, _ = run_memory("quadratic", {"dim": 50}, "neural_tangent",
                          {"width": 100, "solver": "cg"}, 10_000, 100)
    assert cg == 8 * (3 * 50 ** 2 + 10_100 * 51 + 4096 * 100 + 10 * 100 * 50)


def test_semi_random_with_few_samples_counts_the_dense_dual():
    # xie's digits fit: n = 1000 ≤ 4096, n² ≤ 64p (p = 1024 · 64): three n × n matrices more
    dense, _, _ = run_memory("single_neuron", {"dim": 64}, "semi_random",
                             {"width": 1024, "solver": "cg"}, 1000, 10)
    assert dense == 8 * (4 * 64 + 1010 * 65 + 4096 * 1024 + 10 * 1024 * 64 + 3 * 1000 ** 2)


def test_the_dense_dual_rule_is_the_solvers():
    # resources mirrors models._tangent_dual.use_dense (it imports no torch): the same answer
    # on a grid around every threshold
    for samples in (1, 63, 64, 1000, 2048, 2049, 4096, 4097, 10_000):
        for unknowns in (100, 128, 8192, 65_536, 65_537, 262_144, 10 ** 7):
            assert _dense_dual(samples, unknowns) == use_dense(samples, unknowns), (samples,
                                                                                   unknowns)


def test_the_task_dominates_at_huge_dim():
    _, parameter, _ = run_memory("quadratic", {"dim": 10 ** 6}, "random_features",
                                 {"width": 10}, None, 10)
    assert parameter == "dim"


def test_memory_limit_reads_the_override(monkeypatch):
    monkeypatch.setenv(MEMORY_VARIABLE, "2.5")
    assert memory_limit() == 2.5e9
    monkeypatch.setenv(MEMORY_VARIABLE, "inf")
    assert memory_limit() is None
    monkeypatch.setenv(MEMORY_VARIABLE, "-1")
    with pytest.raises(SpecError, match="must be positive"):
        memory_limit()


def test_run_count_cap_names_the_largest_factor(tmp_path):
    spec = parse_spec({"task": {"name": "t"}, "regime": [{"name": "r"}],
                       "sweep": {"seeds": MAX_RUNS + 1}}, tmp_path / "s.toml")
    with pytest.raises(SpecError) as error:
        check_resources(spec, tmp_path / "s.toml", {}, [{}], [("r", {})])
    assert error.value.field == "sweep.seeds" and f"{MAX_RUNS + 1:,} runs" in error.value.message
