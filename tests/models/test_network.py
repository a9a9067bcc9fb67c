"""The Network regime: population GD (Theorem 3, single neuron), online SGD, laziness, scalings,
convergence certificates, the closed-form quadratic path, stability (centering, halvings)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from lazylab.errors import DivergenceError
from lazylab.models.network import PARAMETERIZATIONS, Network
from lazylab.risk import empirical_risk, population_risk
from lazylab.tasks import TASKS, Dataset
from lazylab.theory import network_risk


pytestmark = pytest.mark.usefixtures("one_thread")


def _quadratic(dim, seed=3):
    return TASKS["quadratic"](rng=np.random.default_rng(seed), dim=dim)


def _theorem3_value(task, width):
    """inf L = 2 Σ_{i>N} λ_i(B)² (Ghorbani et al. 2019, Theorem 3; THEORY §1.5)."""
    eigenvalues = torch.linalg.eigvalsh(task.matrix).flip(0)
    return 2 * float(torch.sum(eigenvalues[width:] ** 2))


THEOREM3 = dict(activation="quadratic", train="first", head_init="ones")
"""ŷ = Σ_i (w_i·x)² + c: standard parameterization, head fixed to 1, W and c trained."""


# ----------------------------------------------------------------------------- acceptance

@pytest.mark.slow
def test_population_gd_of_the_theorem3_network_reaches_its_infimum():
    """GD on the exact engine's risk (d = 8, N = 3) ends within 1e-3 of 2Σ_{i>N}λ_i² (Thm 3)."""
    task = _quadratic(8)
    model = Network(width=3, learning_rate=0.02, momentum=0.9, steps=200, rate_scaling="none",
                    **THEOREM3).fit(
        task, rng=np.random.default_rng(0))
    optimum = _theorem3_value(task, 3)
    risk = model.diagnostics["population_risk"]
    assert risk == pytest.approx(float(population_risk(model, task)), rel=1e-12)
    assert abs(risk - optimum) <= 1e-3 * optimum
    torch.testing.assert_close(model.head, torch.ones(3, dtype=torch.float64))
    assert model.diagnostics["steps"] == 200 and "samples_seen" not in model.diagnostics


@pytest.mark.slow
def test_single_relu_neuron_is_learned_by_gradient_descent():
    """Width 1, head fixed to 1: GD on the exact risk learns y = relu(w*·x) (Yehudai–Shamir's
    tractable case, THEORY §2.4) to population risk < 1e-3 ‖f*‖² from a random start (seed 0)."""
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=10)
    model = Network(width=1, activation="relu", train="first", head_init="ones", offset=False,
                    learning_rate=0.1, momentum=0.9, steps=150).fit(
        task, rng=np.random.default_rng(0))
    risk = float(population_risk(model, task))
    assert risk < 1e-3 * task.target_second_moment()
    cosine = float(model.weights[0] @ task.weights / model.weights[0].norm())
    assert cosine > 0.99


@pytest.mark.slow
def test_online_sgd_approaches_the_population_gd_value():
    """One-pass SGD (batch 100, fresh samples) on the Theorem 3 model decreases the exact risk
    towards 2Σ_{i>N}λ_i²: loose statistical check, fixed seeds (d = 8, N = 3)."""
    task = _quadratic(8)
    optimum = _theorem3_value(task, 3)
    risks = {}
    for steps in (500, 2000):
        model = Network(width=3, training="online", learning_rate=0.002, steps=steps,
                        schedule="paper", **THEOREM3).fit(task, rng=np.random.default_rng(0))
        risks[steps] = float(population_risk(model, task))
        assert model.diagnostics["samples_seen"] == steps * 100
    initial = Network(width=3, steps=1, learning_rate=1e-12, **THEOREM3).fit(
        task, rng=np.random.default_rng(0)).diagnostics["population_risk"]
    assert risks[2000] < risks[500] < initial
    assert risks[2000] - optimum < 0.05 * (initial - optimum)


def test_diverging_run_raises_divergence_error_not_nan():
    """Without halvings allowed, a divergence is an error, never NaN."""
    task = _quadratic(8)
    with pytest.raises(DivergenceError, match="diverged at step") as caught:
        Network(width=4, training="online", learning_rate=10.0, steps=200, max_halvings=0,
                **THEOREM3).fit(task, rng=np.random.default_rng(0))
    assert caught.value.step is not None and 0 < caught.value.step < 200


def test_diverging_online_run_is_retried_with_halved_rates_and_recorded():
    """The same run with halvings allowed restarts from the same draws at η/2, η/4, …: it ends
    finite, says how many halvings it took, and equals the run started at that rate."""
    task = _quadratic(8)
    model = Network(width=4, training="online", learning_rate=10.0, steps=200, **THEOREM3).fit(
        task, rng=np.random.default_rng(0))
    halvings = int(model.diagnostics["halvings"])
    assert halvings >= 1 and model.diagnostics["learning_rate"] == 10.0 / 2 ** halvings
    assert all(math.isfinite(v) for v in model.diagnostics.values())
    direct = Network(width=4, training="online", learning_rate=10.0 / 2 ** halvings, steps=200,
                     max_halvings=0, **THEOREM3).fit(task, rng=np.random.default_rng(0))
    torch.testing.assert_close(model.weights, direct.weights, rtol=0, atol=0)


# ----------------------------------------------------------------------------- laziness

def _linearization_gap(model, alpha, width, x):
    """‖f_α − α J_θ₀(θ − θ₀)‖/‖f_α‖ on x: distance to the neural-tangent linearization."""
    w, w0 = model.weights[:width], model.weights[width:]
    a, a0 = model.head[:width] / alpha, -model.head[width:] / alpha
    c = model.offset / alpha

    # J_θ₀(θ − θ₀) for tanh units, written out: σ(XW₀ᵀ)(a − a₀) + (σ′(XW₀ᵀ) ∘ X(W − W₀)ᵀ)a₀ + c
    pre = x @ w0.T
    tangent = (torch.tanh(pre) @ (a - a0) + ((1 - torch.tanh(pre) ** 2) * (x @ (w - w0).T)) @ a0
               + c)
    full = model.predict(x)
    return float(torch.linalg.norm(full - alpha * tangent) / torch.linalg.norm(full))


@pytest.mark.slow
def test_laziness_scales_the_motion_and_the_distance_to_the_linearization():
    """Chizat–Oyallon–Bach: weights move O(1/α) and f_α departs from its linearization by
    O(1/α); α = 10 → 100 divides both by 10 (within 15 %), while α = 0.1 moves far."""
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5)
    data = task.sample(200, rng=np.random.default_rng(1))
    x = task.sample(500, rng=np.random.default_rng(2)).x
    changes, gaps = {}, {}
    for alpha in (0.1, 10.0, 100.0):
        model = Network(width=20, activation="tanh", laziness=alpha, learning_rate=0.05,
                        steps=200, batch_size=200).fit(data, rng=np.random.default_rng(0))
        assert model.width == 40  # trained units and frozen initial units
        changes[alpha] = model.diagnostics["weight_change"]
        gaps[alpha] = _linearization_gap(model, alpha, 20, x)
        assert model.diagnostics["final_train_loss"] < 0.5 * model.diagnostics["initial_train_loss"]
    assert changes[10.0] / changes[100.0] == pytest.approx(10.0, rel=0.15)
    assert gaps[10.0] / gaps[100.0] == pytest.approx(10.0, rel=0.15)
    assert gaps[100.0] < 1e-3
    assert changes[0.1] > 30 * changes[10.0] and gaps[0.1] > 0.1


def test_lazy_predictor_is_zero_at_initialization_and_exact():
    """f_α(θ₀) = 0, and the population risk of the 2N-unit predictor is E y² at θ = θ₀."""
    task = _quadratic(6)
    model = Network(width=4, activation="relu", laziness=5.0, learning_rate=1e-12,
                    steps=1).fit(task, rng=np.random.default_rng(0))
    x = task.sample(50, rng=np.random.default_rng(1)).x
    assert float(model.predict(x).abs().max()) < 1e-9
    assert model.diagnostics["population_risk"] == pytest.approx(task.target_second_moment(),
                                                                  rel=1e-8)


# ----------------------------------------------------------------------------- scalings

def test_initialization_is_shared_draw_for_draw_across_parameterizations():
    """Effective w_i ~ N(0, I/d) identical for all three; heads a = g/√N (standard, ntk) and
    a = g/N (mean field) from the same draws g."""
    effective = {}
    for name in PARAMETERIZATIONS:
        net = Network(width=6, parameterization=name)
        state = net.initialize(4, rng=np.random.default_rng(5))
        effective[name] = Network._effective(state["raw"], state["scales"])
    g = np.random.default_rng(5)
    weights = torch.from_numpy(g.standard_normal((6, 4))) / 2.0
    heads = torch.from_numpy(g.standard_normal(6))
    for name, (w, a, _, _) in effective.items():
        torch.testing.assert_close(w, weights)
        torch.testing.assert_close(a, heads / (6 if name == "mean_field" else math.sqrt(6)))


def test_width_scaling_of_the_weight_motion():
    """With a width-independent learning rate, NTK weights move O(1/√N) (4× width → about ½)
    while mean-field weights move O(1) (gradient multiplier N), on the same data."""
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5)
    data = task.sample(100, rng=np.random.default_rng(1))
    motion = {}
    for name in ("ntk", "mean_field"):
        for width in (50, 800):
            model = Network(width=width, activation="tanh", parameterization=name,
                            learning_rate=0.1, steps=50, batch_size=100).fit(
                data, rng=np.random.default_rng(0))
            motion[name, width] = model.diagnostics["weight_change"]
    assert 2.5 < motion["ntk", 50] / motion["ntk", 800] < 6.0
    assert 0.8 < motion["mean_field", 50] / motion["mean_field", 800] < 1.25
    assert motion["mean_field", 800] > 10 * motion["ntk", 800]


# ----------------------------------------------------------------------------- data modes

def test_minibatch_training_on_a_fixed_data_set():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5)
    data = task.sample(150, rng=np.random.default_rng(1))
    calls = []
    model = Network(width=30, activation="relu", optimizer="adam", learning_rate=0.01,
                    steps=120, batch_size=40).fit(
        data, rng=np.random.default_rng(0), progress=lambda step, total: calls.append((step, total)))
    diagnostics = model.diagnostics
    assert diagnostics["final_train_loss"] == pytest.approx(empirical_risk(model, data), rel=1e-12)
    assert diagnostics["final_train_loss"] < 0.2 * diagnostics["initial_train_loss"]
    assert diagnostics["samples_seen"] == 30 * 150  # 4 batches per epoch, 30 epochs
    assert calls[-1] == (120, 120) and all(total == 120 for _, total in calls)
    assert all(isinstance(v, float) and math.isfinite(v) for v in diagnostics.values())
    assert model.weights.dtype == torch.float64 and model.weights.device.type == "cpu"


def test_same_seed_same_network():
    task = _quadratic(5)
    net = Network(width=5, activation="relu", training="online", steps=30, learning_rate=0.01)
    first = net.fit(task, rng=np.random.default_rng(7))
    second = net.fit(task, rng=np.random.default_rng(7))
    torch.testing.assert_close(first.weights, second.weights, rtol=0, atol=0)
    third = net.fit(task, rng=np.random.default_rng(8))
    assert not torch.allclose(first.weights, third.weights)


def test_float32_and_float64_agree_on_a_short_run():
    # one data set for both: online float32 draws its own (torch) stream (fresh_batches)
    data = _quadratic(6).sample(500, rng=np.random.default_rng(1))
    models = {dtype: Network(width=8, activation="relu", steps=50, batch_size=50,
                             learning_rate=0.01, dtype=dtype).fit(data, rng=np.random.default_rng(0))
              for dtype in ("float32", "float64")}
    torch.testing.assert_close(models["float32"].weights, models["float64"].weights,
                               rtol=1e-4, atol=1e-5)
    assert models["float32"].weights.dtype == torch.float64  # the predictor is float64


@dataclass(frozen=True)
class _SamplesOnly:
    """A task without population moments (like a real data set)."""

    dim: int = 3
    has_moments: bool = False

    def sample(self, n, *, rng):
        x = torch.from_numpy(rng.standard_normal((n, self.dim)))
        return Dataset(x, x[:, 0] ** 2)


def test_task_without_moments_trains_online_but_not_at_population():
    task = _SamplesOnly()
    model = Network(width=4, training="online", steps=20, learning_rate=0.01).fit(
        task, rng=np.random.default_rng(0))
    assert model.diagnostics["samples_seen"] == 2000
    with pytest.raises(ValueError, match="no population moments"):
        Network(width=4, training="population", steps=2).fit(task, rng=np.random.default_rng(0))


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("field, value, message", [
    ("width", 0, "width must be an integer >= 1"),
    ("learning_rate", 0.0, "learning_rate must be a finite number > 0"),
    ("learning_rate", -1.0, "learning_rate must be a finite number > 0"),
    ("learning_rate", math.inf, "learning_rate must be a finite number > 0"),
    ("steps", 0, "steps must be an integer >= 1"),
    ("batch_size", 0, "batch_size must be an integer >= 1"),
    ("optimizer", "rmsprop", "optimizer must be one of 'sgd', 'adam'"),
    ("parameterization", "muP", "parameterization must be one of 'standard', 'ntk', 'mean_field'"),
    ("train", "head", "train must be one of 'both', 'first', 'second'"),
    ("training", "offline", "training must be one of 'population', 'online'"),
    ("schedule", "cosine", "schedule must be one of 'constant', 'paper'"),
    ("dtype", "float16", "dtype must be one of 'float32', 'float64'"),
    ("laziness", 0.0, "laziness must be a finite number > 0 or None"),
    ("weight_scale", -1.0, "weight_scale must be a finite number >= 0"),
    ("head_init", "uniform", "head_init must be one of 'gaussian', 'ones', 'zeros'"),
    ("momentum", 0.5, "momentum applies to optimizer='sgd' only"),
    ("device", "tpu", "device must be 'cpu' or 'cuda"),
])
def test_bad_fields_raise_naming_the_field(field, value, message):
    options = {"optimizer": "adam"} if field == "momentum" else {}
    with pytest.raises(ValueError, match=message):
        Network(**options, **{field: value})


def test_batch_larger_than_the_data_set_is_rejected():
    data = TASKS["quadratic"](rng=np.random.default_rng(0), dim=3).sample(10,
                                                                         rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match="batch_size=100 exceeds .* n=10"):
        Network(width=2).fit(data, rng=np.random.default_rng(0))


def test_population_training_needs_float64_on_the_cpu():
    with pytest.raises(ValueError, match="float64, CPU"):
        Network(width=2, dtype="float32").fit(_quadratic(3), rng=np.random.default_rng(0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        Network(width=2, training="online", device="cuda").fit(_quadratic(3),
                                                                 rng=np.random.default_rng(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_online_training_matches_cpu():
    task = _quadratic(6)
    models = {device: Network(width=8, activation="relu", training="online", steps=50,
                              learning_rate=0.01, device=device).fit(
        task, rng=np.random.default_rng(0)) for device in ("cpu", "cuda")}
    torch.testing.assert_close(models["cuda"].weights, models["cpu"].weights, rtol=1e-8, atol=1e-10)


def test_experiments_layer_records_a_diverged_network_run():
    """Through the registry and execute_run: status 'diverged' with the step, no NaN metric."""
    from lazylab.experiments.execute import DIVERGED, execute_run
    from lazylab.experiments.runs import make_run

    run = make_run("quadratic", {"dim": 5}, "network",
                   {"width": 3, "activation": "relu", "training": "online", "steps": 50,
                    "learning_rate": 100.0, "max_halvings": 0}, None, 50, 0)
    outcome = execute_run(run)
    assert outcome.status == DIVERGED and "DivergenceError" in outcome.error
    assert 0 < outcome.metrics["steps_to_divergence"] < 50


# ----------------------------------------------------------------------------- convergence

def _theorem3_smoke_task():
    return TASKS["quadratic"](rng=np.random.default_rng(0), dim=20, matrix="exp-diagonal")


THEOREM3_SMOKE = dict(learning_rate=0.04, momentum=0.9, rate_scaling="none", max_steps=20_000)
"""Population GD of the Theorem 3 network at d = 20, run to the default tolerance 1e-6, with
the initialization at the target's scale: s_w² = Tr B / N, so that Tr M₀ = Tr B at every N."""


@pytest.mark.slow
@pytest.mark.parametrize("width", [5, 20, 40])
def test_population_gd_reaches_theorem3_at_every_width_and_certifies_it(width):
    """N < d, N = d and N > d (where inf R = 0): the normalized risk of the converged fit is
    within 1e-3 of Theorem 3's Σ_{i>N} λ_i²/‖B‖²_F, and the certificate says converged by tolerance."""
    task = _theorem3_smoke_task()
    scale = math.sqrt(float(torch.trace(task.matrix)) / width)
    model = Network(width=width, weight_scale=scale, **THEOREM3_SMOKE, **THEOREM3).fit(
        task, rng=np.random.default_rng(1))
    diagnostics = model.diagnostics
    assert diagnostics["converged"] == 1 and diagnostics["stop_reason"] == 0
    assert diagnostics["criterion"] <= diagnostics["tolerance"] == 1e-6
    assert diagnostics["steps"] < 20_000 and diagnostics["halvings"] == 0
    risk = diagnostics["population_risk"]
    assert risk == pytest.approx(float(population_risk(model, task)), rel=1e-10, abs=1e-12)
    theory = float(network_risk(width / 20, task.matrix.numpy()))
    assert abs(risk / task.null_risk - theory) <= 1e-3


def test_fixed_budget_short_of_tolerance_says_unconverged():
    """steps = 3 is a fixed budget: exactly 3 steps, stop reason 1 (budget), converged 0, and the
    criterion (relative gradient norm, finite from step 0) above the tolerance."""
    model = Network(width=3, steps=3, learning_rate=0.01, **THEOREM3).fit(
        _quadratic(6), rng=np.random.default_rng(0))
    diagnostics = model.diagnostics
    assert diagnostics["steps"] == 3 and diagnostics["stop_reason"] == 1
    assert diagnostics["converged"] == 0 and diagnostics["criterion"] > diagnostics["tolerance"]


def test_run_to_tolerance_stops_early_and_max_steps_bounds_it():
    task = _quadratic(6)
    options = dict(width=3, learning_rate=0.01, momentum=0.9, tol=1e-4, **THEOREM3)
    done = Network(**options).fit(task, rng=np.random.default_rng(0)).diagnostics
    assert done["converged"] == 1 and done["stop_reason"] == 0 and done["criterion"] <= 1e-4
    cut = Network(max_steps=int(done["steps"]) // 2, **options).fit(
        task, rng=np.random.default_rng(0)).diagnostics
    assert cut["converged"] == 0 and cut["stop_reason"] == 1
    assert cut["steps"] == int(done["steps"]) // 2


def test_steps_and_max_steps_together_are_rejected():
    with pytest.raises(ValueError, match="not both"):
        Network(steps=10, max_steps=10)


def test_certificate_reaches_the_experiment_metrics():
    """execute_run stores converged, steps, criterion and stop_reason as metrics (numbers)."""
    from lazylab.experiments.execute import DONE, execute_run
    from lazylab.experiments.runs import make_run

    run = make_run("quadratic", {"dim": 5}, "network",
                   {"width": 3, "activation": "quadratic", "steps": 20, "learning_rate": 0.01},
                   None, 50, 0)
    outcome = execute_run(run)
    assert outcome.status == DONE
    assert {"converged", "steps", "criterion", "stop_reason", "tolerance", "halvings",
            "learning_rate"} <= set(outcome.metrics)
    assert outcome.metrics["steps"] == 20 and outcome.metrics["stop_reason"] == 1


# ----------------------------------------------------------------------------- closed form

@pytest.mark.parametrize("task_name, options", [
    ("quadratic", dict(train="first", head_init="ones")),
    ("quadratic", dict(train="both", parameterization="ntk")),
    ("gaussian_mixture", dict(train="both")),
    ("gaussian_mixture", dict(train="first", head_init="ones", laziness=3.0)),
])
def test_closed_form_and_engine_give_the_same_trajectory(monkeypatch, task_name, options):
    """Population GD through quadratic_network_risk (O(N d²)) and through the general engine
    (N × N dual matrices) take the same 6 steps to 1e-10 (N = 4 < d = 6 and N = 8 ≥ d)."""
    import lazylab.models._network_training as training

    task = TASKS[task_name](rng=np.random.default_rng(2), dim=6)
    for width in (4, 8):
        net = Network(width=width, activation="quadratic", steps=6, learning_rate=0.01,
                      momentum=0.5, **options)
        closed = net.fit(task, rng=np.random.default_rng(0))
        with monkeypatch.context() as patch:
            patch.setattr(training, "_closed_form", lambda model, source: False)
            engine = net.fit(task, rng=np.random.default_rng(0))
        torch.testing.assert_close(closed.weights, engine.weights, rtol=0, atol=1e-10)
        torch.testing.assert_close(closed.head, engine.head, rtol=0, atol=1e-10)
        assert float(closed.offset) == pytest.approx(float(engine.offset), abs=1e-10)
        assert closed.diagnostics["population_risk"] == pytest.approx(
            engine.diagnostics["population_risk"], rel=1e-10)


# ----------------------------------------------------------------------------- stability

def test_width_rate_scaling_divides_the_standard_sgd_rate_by_the_width():
    """Standard parameterization, head at ones: rate_scaling="width" at η equals "none" at η/N,
    step for step; the ntk parameterization and Adam are left unscaled."""
    task = _quadratic(5)
    for options, divisor in ((dict(**THEOREM3), 7), (dict(activation="relu"), 7),
                             (dict(activation="relu", parameterization="ntk"), 1),
                             (dict(activation="relu", optimizer="adam"), 1)):
        scaled = Network(width=7, steps=4, learning_rate=0.03, rate_scaling="width",
                         **options).fit(
            task, rng=np.random.default_rng(0))
        plain = Network(width=7, steps=4, learning_rate=0.03 / divisor, **options).fit(task, rng=np.random.default_rng(0))
        torch.testing.assert_close(scaled.weights, plain.weights, rtol=0, atol=1e-14)


def test_centered_offset_cancels_the_initial_output_mean():
    """c₀ = −E f_θ₀(x): for σ = u² and head 1, E f = Σ_i ‖w_i‖² + c = 0 exactly; for relu with a
    Gaussian head the Monte Carlo mean over 4·10⁵ inputs is within 5 standard errors of 0; on a
    Dataset the mean prediction over its inputs is 0."""
    task = _quadratic(5)
    quiet = dict(steps=1, learning_rate=1e-300)
    model = Network(width=300, **quiet, **THEOREM3).fit(task, rng=np.random.default_rng(0))
    assert float(model.weights.pow(2).sum() + model.offset) == pytest.approx(0.0, abs=1e-10)
    assert float(model.weights.pow(2).sum()) > 100  # a large mean was cancelled
    relu = Network(width=50, activation="relu", **quiet).fit(task, rng=np.random.default_rng(0))
    outputs = relu.predict(task.sample(400_000, rng=np.random.default_rng(1)).x)
    assert abs(float(outputs.mean())) < 5 * float(outputs.std()) / math.sqrt(400_000)
    data = task.sample(64, rng=np.random.default_rng(2))
    fitted = Network(width=50, activation="relu", batch_size=16, **quiet).fit(
        data, rng=np.random.default_rng(0))
    assert float(fitted.predict(data.x).mean()) == pytest.approx(0.0, abs=1e-12)


def test_divergence_at_large_width_is_backed_off_and_recorded():
    """N = 3000 ≫ d with s_w = 1: Tr M₀ = 3000 makes the curvature 8 Tr M₀ ≈ 2.4·10⁴, so η = 0.04
    diverges; population descent halves η until stable (recorded) and ends finite and below the
    initial risk. With rate_scaling="width" (η/N) the same run needs no halving."""
    task = _quadratic(20)
    options = dict(width=3000, steps=100, learning_rate=0.04, momentum=0.9, **THEOREM3)
    backed = Network(**options).fit(task, rng=np.random.default_rng(0))
    diagnostics = backed.diagnostics
    assert diagnostics["halvings"] >= 1
    assert diagnostics["learning_rate"] == 0.04 / 2 ** diagnostics["halvings"]
    assert all(math.isfinite(v) for v in diagnostics.values())
    assert diagnostics["population_risk"] < diagnostics["initial_train_loss"]
    scaled = Network(rate_scaling="width", **options).fit(
        task, rng=np.random.default_rng(0)).diagnostics
    assert scaled["halvings"] == 0 and scaled["population_risk"] < scaled["initial_train_loss"]


def test_criterion_rate_checks_a_slower_rate_over_proportionally_more_steps():
    """Noisy labels (no interpolation), Adam η = 0.01 on batches of 50: the full-batch loss
    settles to < 1 % change over 3 checks every 100 steps within the budget. With criterion_rate
    1000 η the checks come every 10⁵ steps, beyond the 3000-step budget: the same fit is not
    certified (the change criterion never gets its 3 changes)."""
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5)
    data = task.sample(150, rng=np.random.default_rng(1))
    noise = torch.from_numpy(np.random.default_rng(2).standard_normal(150))
    data = Dataset(data.x, data.y + 0.5 * noise)
    options = dict(width=4, activation="relu", optimizer="adam", learning_rate=0.01,
                   max_steps=3000, tol=1e-2, batch_size=50)
    plain = Network(**options).fit(data, rng=np.random.default_rng(0)).diagnostics
    assert plain["converged"] == 1 and plain["steps"] % 100 == 0 and plain["steps"] < 3000
    slow = Network(criterion_rate=10.0, **options).fit(data, rng=np.random.default_rng(0))
    assert slow.diagnostics["converged"] == 0 and slow.diagnostics["steps"] == 3000
    with pytest.raises(ValueError, match="criterion_rate"):
        Network(criterion_rate=0.0)
