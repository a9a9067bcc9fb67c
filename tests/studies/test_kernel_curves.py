"""kernel-curves: theory inputs from the tasks and kernels, the sweeps, and the smoke-scale claims
(kernel risk on the staircase plateau ℓ = 1.5 within the stated error of the deterministic
equivalent; RF ridge within 3 s.e. + 10 % of Mei–Montanari), with 5 seeds."""

import math

import numpy as np
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.studies import STUDIES, reproduce
from lazylab.studies.kernel_curves import (SIZES, STUDY, degree_energies, kernel_dots,
                                           kernel_profile, kernel_table, rf_dots, rf_table,
                                           target_split)
from lazylab.experiments import Store, load_sweep, results_frame
from lazylab.studies._kernel_baselines import kernel_ridge_selection
from lazylab.tasks import TASKS


def test_registered():
    assert STUDIES["kernel-curves"] is STUDY


def test_degree_energies_of_the_two_index_preset_sum_to_its_second_moment():
    task = TASKS["multi_index"](rng=np.random.default_rng(0), dim=12, preset="two-index")
    energies = degree_energies(task)
    np.testing.assert_allclose(energies, [0.0, 0.25, 0.5, 0.0, 0.25], atol=1e-15)
    assert math.isclose(sum(energies), task.signal_second_moment(), rel_tol=1e-14)


@pytest.mark.parametrize("kind, weight", [("rf", 1.0), ("ntk", 2.0)])
def test_kernel_profile_is_the_arc_cosine_closed_form(kind, weight):
    """h(t) = (√(1 − t²) + w(π − arccos t)t)/(2π), w = 1 (RF) or 2 (NTK) (Cho & Saul 2009)."""
    t = np.linspace(-1.0, 1.0, 41)
    expected = (np.sqrt(1 - t**2) + weight * (np.pi - np.arccos(t)) * t) / (2 * np.pi)
    np.testing.assert_allclose(kernel_profile(kind)(t), expected, atol=1e-13)


def test_the_profile_is_the_kernel_on_the_sphere_at_any_dimension():
    rng = np.random.default_rng(1)
    d = 30
    x = torch.from_numpy(rng.standard_normal((5, d)))
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(d)
    gram = DualKernel("ntk")(x, x).numpy()
    np.testing.assert_allclose(gram, kernel_profile("ntk")((x @ x.T).numpy() / d), atol=1e-12)


def test_target_split_of_a_relu_neuron():
    """relu(w*·x), ‖w*‖ = 1: F₁² = λ₁² = 1/4, Var y = 1/2 − 1/(2π), F*² = Var y − 1/4."""
    task = TASKS["single_neuron"](rng=np.random.default_rng(2), dim=20, activation="relu")
    linear, nonlinear, variance = target_split(task)
    assert math.isclose(linear, 0.25, rel_tol=1e-12)
    assert math.isclose(variance, 0.5 - 1 / (2 * math.pi), rel_tol=1e-12)
    assert math.isclose(nonlinear, variance - 0.25, rel_tol=1e-12)


def test_sweeps_use_n_equal_d_to_the_ell_and_falkon_only_above_the_cholesky_range():
    specs = STUDY.sweeps("default")
    kernel = [s for s in specs if s["name"].startswith(("kc-rf-d", "kc-ntk-d"))]
    assert {s["regime"][0]["kind"] for s in kernel} == {"rf", "ntk"}
    spec = next(s for s in kernel if s["name"] == "kc-rf-d32")
    assert spec["sweep"]["n_train"] == [32, 181, 1024, 5793]
    for s in kernel:
        assert s["regime"][0]["ridge"] == kernel_ridge_selection(s["regime"][0]["kind"])
    paper = [s for s in STUDY.sweeps("paper") if s["name"].endswith("-falkon")]
    assert paper and all(min(s["sweep"]["n_train"]) > 20000 for s in paper)
    assert all(s["regime"][0]["n_centers"] == SIZES["paper"].falkon_centers for s in paper)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kernel-curves")
    result = reproduce(STUDY, scale="smoke", executor="inprocess", output_dir=directory,
                       quiet=True)
    assert result["runs"]["done"] == result["runs"]["total"] > 0
    with Store(result["store"]) as store:
        frames = {path.stem: results_frame(load_sweep(path), store, statuses=("done",))
                  for path in result["specs"]}
    return result, frames


def test_kernel_risk_on_the_plateau_is_within_the_stated_error_of_the_theory(smoke):
    """ℓ = 1.5, d = 16, 5 seeds: |risk/theory − 1| ≤ 2 s.e. + 0.5/√d with s.e. ≤ 0.5/√d (the
    summary's rule for 'applies'), and
    the risk has left the ℓ = 1 level towards the plateau 0.75 (learning happened)."""
    dots = kernel_dots(kernel_table(smoke[1], "smoke"))
    for kind in ("rf", "ntk"):
        rows = dots[dots["kind"] == kind].sort_values("n_train")
        plateau = rows.iloc[-1]
        assert math.isclose(plateau["ell"], 1.5, abs_tol=0.01)
        assert plateau["applies"] == "yes", plateau
        assert abs(plateau["gap"]) <= 2 * plateau["gap_sem"] + 0.5 / math.sqrt(16), plateau
        assert plateau["gap_sem"] <= 0.5 / math.sqrt(16)
        assert abs(plateau["mean"] - plateau["staircase"]) < abs(plateau["mean"] - 1.0)
        assert plateau["mean"] + 2 * plateau["sem"] < rows.iloc[0]["mean"]


def test_rf_ridge_risk_is_within_tolerance_of_mei_montanari(smoke):
    """d = 40, n = 80, N/n ∈ {0.25, 3}, 5 seeds: |risk/theory − 1| ≤ 3 s.e. + 10 %."""
    dots = rf_dots(rf_table(smoke[1], "smoke"))
    assert set(dots["ridge_rule"]) == {"small", "validated"} and len(dots) == 4
    for row in dots.itertuples():
        assert abs(row.gap) <= 3 * row.gap_sem + 0.10, row
    validated = dots[dots["ridge_rule"] == "validated"].set_index("ratio")["mean"]
    small = dots[dots["ridge_rule"] == "small"].set_index("ratio")["mean"]
    assert validated[3.0] < small[3.0]          # the validated ridge does better than λ = 1e-3


def test_summary_states_claims_and_numbers(smoke):
    text = smoke[0]["summary"].read_text(encoding="utf-8")
    assert "deterministic equivalent" in text and "Mei–Montanari" in text
    assert "supported" in text and "± " in text
    assert "numerical floor" in text and "ridge-less is optimal" in text


def test_every_smoke_dot_is_interior_or_an_explained_edge(smoke):
    """Each edge choice is at the numerical floor or at the null end (the summary's two cases)."""
    table = kernel_table(smoke[1], "smoke")
    edges = table[table["at_edge"] > 0]
    assert ((edges["floor_edge"] + edges["null_edge"]) == 1).all()
