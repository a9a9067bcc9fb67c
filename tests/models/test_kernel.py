"""Kernel: the dual-activation kernels against closed forms and Monte Carlo over w, the fits, and
the refusal of n = ∞."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.gaussian import pair_expectation
from lazylab.models import Kernel
from lazylab.models import kernel as kernel_module
from lazylab.models.kernel import DualKernel
from lazylab.models.neural_tangent import GatedFeatures
from lazylab.risk import empirical_risk
from lazylab.solvers import ridge_path as ridge_path_module
from lazylab.tasks import TASKS


def _points(n, dim, seed):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((n, dim)))


def test_relu_kernels_are_the_arc_cosine_closed_forms():
    dim = 7
    x, y = _points(5, dim, 0), _points(4, dim, 1)
    nx, ny = x.norm(dim=1)[:, None], y.norm(dim=1)[None, :]
    cos = (x @ y.T / (nx * ny)).clamp(-1, 1)
    theta = torch.arccos(cos)
    arc1 = nx * ny * (torch.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi) / dim
    arc0 = (math.pi - theta) / (2 * math.pi)
    torch.testing.assert_close(DualKernel("rf")(x, y), arc1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(DualKernel("ntk")(x, y), arc1 + (x @ y.T / dim) * arc0,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(DualKernel("semi_random", degree=0)(x, y), (x @ y.T / dim) * arc0,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(DualKernel("semi_random", degree=1)(x, y),
                               (x @ y.T / dim) * arc1, rtol=1e-12, atol=1e-12)


def _reference(kind, activation, degree, x1, x2):
    """The pre-fusion implementation: pair_expectation per term, float64 inputs."""
    dim = x1.shape[1]
    var1, var2 = (x1 * x1).sum(1, keepdim=True) / dim, (x2 * x2).sum(1)[None, :] / dim
    cov = x1 @ x2.T / dim

    def dual(name):
        return pair_expectation(name, name, var1, var2, cov, None, None)

    if kind == "semi_random":
        return cov * dual({0: "step", 1: "relu"}[degree])
    sigma = get_activation(activation)
    return dual(sigma) + (cov * dual(sigma.derivative()) if kind == "ntk" else 0.0)


CASES = [("rf", "relu", 0), ("ntk", "relu", 0), ("semi_random", "relu", 0),
         ("semi_random", "relu", 1), ("rf", "tanh", 0), ("ntk", "tanh", 0)]


@pytest.mark.parametrize("kind,activation,degree", CASES)
def test_fused_kernels_equal_the_reference_off_and_on_the_diagonal(kind, activation, degree):
    # Off-diagonal pairs of random points are far from collinear (|cos θ| < 0.9), where sin θ is
    # well conditioned: both routes agree to ε-level. The symmetric Gram sets cos θ = 1 exactly
    # on its diagonal, where the reference's sin θ = (1 − cos²θ)^{1/2} may carry ~1e-8 of
    # rounding; there the closed forms ‖x‖²/(2d) (rf), ‖x‖²/d (ntk), ‖x‖²/(2d) (s = 0),
    # ‖x‖⁴/(2d²) (s = 1) are the reference.
    x1, x2 = _points(70, 9, 11), _points(50, 9, 12)
    x1[3] = 0.0  # a zero row: every kernel vanishes on it
    kernel = DualKernel(kind, activation, degree)
    torch.testing.assert_close(kernel(x1, x2), _reference(kind, activation, degree, x1, x2),
                               rtol=1e-12, atol=1e-12)
    gram = kernel(x2, x2)
    off = ~torch.eye(50, dtype=torch.bool)
    torch.testing.assert_close(gram[off], _reference(kind, activation, degree, x2, x2)[off],
                               rtol=1e-12, atol=1e-12)
    if activation == "relu":
        torch.testing.assert_close(gram, gram.T, rtol=0, atol=0)
        squared = x2.square().sum(1) / 9
        diagonal = {"rf": squared / 2, "ntk": squared, "semi_random": squared ** (1 + degree) / 2}
        torch.testing.assert_close(gram.diagonal(), diagonal[kind], rtol=1e-14, atol=0)


@pytest.mark.parametrize("kind,activation,degree", CASES[:4])
def test_inputs_requiring_a_gradient_take_the_differentiable_route(kind, activation, degree):
    # The fused pass works in place; with requires_grad the pair_expectation route is used and
    # its gradient is checked against a central difference of the fused kernel's sum.
    x1, x2 = _points(6, 5, 14), _points(4, 5, 15)
    kernel = DualKernel(kind, activation, degree)
    leaf = x1.clone().requires_grad_(True)
    value = kernel(leaf, x2)
    torch.testing.assert_close(value.detach(), kernel(x1, x2), rtol=1e-12, atol=1e-12)
    value.sum().backward()
    # central difference error O(step²·third derivative) + O(ε/step): ~1e-10 here, checked at 1e-6
    step, direction = 1e-6, torch.zeros(6, 5, dtype=torch.float64)
    direction[0, 0] = 1.0
    plus, minus = (float(kernel(x1 + sign * step * direction, x2).sum()) for sign in (1, -1))
    assert abs(float(leaf.grad[0, 0]) - (plus - minus) / (2 * step)) < 1e-6


@pytest.mark.parametrize("kind,activation,degree", CASES)
def test_float32_inputs_agree_with_float64(kind, activation, degree):
    # Inputs are upcast before any product, so float32 x gives the float64 kernel of the rounded
    # x: relative input error 2⁻²⁴ ≈ 6e-8 moves K by a few 1e-8 relative, well inside 1e-6.
    x = _points(200, 45, 13)
    kernel = DualKernel(kind, activation, degree)
    exact = kernel(x, x)
    single = kernel(x.float(), x.float())
    assert single.dtype == torch.float64
    assert float((single - exact).abs().max()) <= 1e-6 * float(exact.abs().max())
    torch.testing.assert_close(single.diagonal(), exact.diagonal(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", ["rf", "ntk"])
def test_tanh_kernels_match_monte_carlo_over_the_weights(kind):
    # K is an expectation over w ~ N(0, I/d); m = 2·10⁵ draws, tolerance 5 standard errors
    # per entry (all 12 entries pass with probability > 1 − 12·6e-7).
    dim, m = 6, 200_000
    x, y = _points(3, dim, 2), _points(4, dim, 3)
    w = _points(m, dim, 4) / math.sqrt(dim)
    u, v = x @ w.T, y @ w.T
    samples = torch.tanh(u)[:, None, :] * torch.tanh(v)[None, :, :]
    if kind == "ntk":
        samples = samples + (x @ y.T / dim)[:, :, None] * ((1 - torch.tanh(u) ** 2)[:, None, :]
                                                           * (1 - torch.tanh(v) ** 2)[None, :, :])
    mean, se = samples.mean(-1), samples.std(-1) / math.sqrt(m)
    exact = DualKernel(kind, "tanh")(x, y)
    assert torch.all((exact - mean).abs() < 5 * se), (exact - mean) / se


def test_semi_random_feature_gram_approaches_the_semi_random_kernel():
    # SemiRandom features φ_i(x) = σ_s(r_i·x) x, r_i ~ N(0, I/d): F Fᵀ/(N d) → K_s entrywise with
    # O(1/√N) Monte Carlo error, so the max gap shrinks by ~4 from N = 250 to 4000.
    dim, x = 3, _points(60, 3, 5)
    for degree, gate in ((0, "step"), (1, "relu")):
        kernel = DualKernel("semi_random", degree=degree)(x, x)
        gaps = []
        for width in (250, 4000):
            weights = _points(width, dim, 6) / math.sqrt(dim)
            features = GatedFeatures(weights, get_activation(gate)).matrix(x)
            gaps.append(float((features @ features.T / (width * dim) - kernel).abs().max()))
        assert 2.0 < gaps[0] / gaps[1] < 8.0 and gaps[1] < 0.05 * float(kernel.abs().max()), gaps


def test_kernel_fits_and_falkon_path():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4, noise=0.1)
    data = task.sample(400, rng=np.random.default_rng(1))
    test = task.sample(1000, rng=np.random.default_rng(2))
    exact = Kernel(kind="ntk", ridge=1e-4).fit(data, rng=np.random.default_rng(3))
    assert empirical_risk(exact, test) < 0.1 * task.null_risk
    falkon = Kernel(kind="ntk", ridge=1e-4, method="falkon", n_centers=150).fit(
        data, rng=np.random.default_rng(3))
    assert falkon.diagnostics["n_centers"] == 150 and falkon.diagnostics["cg_iterations"] > 0
    assert falkon.diagnostics["converged"] == 1.0 and falkon.diagnostics["kernel_residual"] <= 1e-7
    assert exact.diagnostics["converged"] == 1.0 and "kernel_residual" not in exact.diagnostics
    assert falkon.diagnostics["criterion"] == falkon.diagnostics["kernel_residual"]
    assert empirical_risk(falkon, test) < 1.5 * empirical_risk(exact, test) + 0.01


def test_bad_inputs_and_no_population_fit():
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4)
    with pytest.raises(ValueError, match="kernel ridge needs samples"):
        Kernel().fit(task, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="kind"):
        Kernel(kind="laplace")
    with pytest.raises(ValueError, match="degree"):
        Kernel(kind="semi_random", degree=3)
    with pytest.raises(ValueError, match="unknown activation"):
        Kernel(activation="gelu2")
    with pytest.raises(ValueError, match="step"):
        Kernel(kind="ntk", activation="step")
    with pytest.raises(ValueError, match="ridge"):
        Kernel(ridge=-0.1)


@pytest.mark.parametrize("kind, degree, route", [
    ("rf", 0, "cholesky"), ("ntk", 0, "cholesky"), ("ntk", 0, "eigh"), ("semi_random", 1, "eigh"),
    ("ntk", 0, "reuse"), ("rf", 0, "reuse")])
def test_kernel_path_equals_a_fit_per_ridge(monkeypatch, kind, degree, route):
    # The Cholesky route factors the same K + nλI as the fit. One eigendecomposition of K
    # agrees with it to about n·ε·cond(K + nλI) ≤ 120·1e-16·(max K-eigenvalue/(nλ)) ≈ 1e-9 at
    # λ = 1e-8 (measured ≤ 1e-12); checked at 1e-8 relative on the predictions. Reused factors
    # (from n = 1024 on, lowered here to 120) reach backward error 1e-14, so the same bound
    # with 1e-14 for n·ε. λ = 0 always takes the Cholesky route.
    if route == "eigh":
        monkeypatch.setattr(ridge_path_module, "EIGH_MIN_SHIFTS", 1)
    if route == "reuse":
        monkeypatch.setattr(ridge_path_module, "REUSE_MIN_SIZE", 120)
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5, noise=0.1)
    data, test = (task.sample(n, rng=np.random.default_rng(s)) for n, s in ((120, 1), (300, 2)))
    ridges = [1e-8, 1e-6, 1e-4, 1e-2, 1.0, 0.0]
    regime = Kernel(kind=kind, degree=degree, ridge=0.5)
    path = regime.fit_path(data, ridges, rng=np.random.default_rng(3))
    assert len(path) == len(ridges)
    for ridge, model in zip(ridges, path):
        single = Kernel(kind=kind, degree=degree, ridge=ridge).fit(
            data, rng=np.random.default_rng(3))
        expected = single.predict(test.x)
        error = torch.linalg.vector_norm(model.predict(test.x) - expected)
        assert error <= 1e-8 * torch.linalg.vector_norm(expected), ridge
        assert set(model.diagnostics) == set(single.diagnostics)
        if route == "reuse" and ridge:
            assert model.solution.method in ("cholesky-pcg", "cholesky"), ridge
        else:
            assert model.solution.method == ("eigh-path" if ridge and route == "eigh"
                                             else single.solution.method)
    if route == "reuse":
        assert "cholesky-pcg" in {model.solution.method for model in path}


def test_kernel_path_is_declined_above_the_exact_path_size_and_checks_its_inputs(monkeypatch):
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4)
    data = task.sample(50, rng=np.random.default_rng(1))
    monkeypatch.setattr(kernel_module, "PATH_MAX_SAMPLES", 49)
    assert Kernel().fit_path(data, [1e-3], rng=np.random.default_rng(0)) is None
    with pytest.raises(ValueError, match=r"ridges\[1\] must be > 0 for FALKON"):
        Kernel(method="falkon").fit_path(data, [1e-3, 0.0], rng=np.random.default_rng(0))
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"ridges\[1\]"):
        Kernel().fit_path(data, [1e-3, -1.0], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="kernel ridge needs samples"):
        Kernel().fit_path(task, [1e-3], rng=np.random.default_rng(0))


def test_the_predictors_of_a_path_share_one_kernel_block_of_their_first_inputs(monkeypatch):
    # Five ridges scored on one validation set: K(x_val, x_train) once, not five times; the
    # shared block gives the predictions of the unshared solution (same kernel entries, one GEMM
    # instead of row blocks: round-off, checked at 1e-12). A view of the same rows (what
    # empirical_risk's row blocks are) matches; other inputs, or the same after an in-place
    # change, are computed afresh.
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5, noise=0.1)
    data, validation = (task.sample(n, rng=np.random.default_rng(s)) for n, s in ((80, 1), (60, 2)))
    path = Kernel(kind="ntk").fit_path(data, [1e-6, 1e-4, 1e-2, 1.0, 10.0],
                                       rng=np.random.default_rng(0))
    calls = _count_kernel_matrices(monkeypatch)
    for model in path:
        for rows in (validation.x, validation.x[0:60]):
            expected = model.solution.predict(validation.x)
            torch.testing.assert_close(model.predict(rows), expected, rtol=1e-12, atol=1e-14)
        assert empirical_risk(model, validation) == pytest.approx(
            float(torch.mean((model.solution.predict(validation.x) - validation.y) ** 2)),
            rel=1e-12)
    assert calls == [60]
    other = task.sample(30, rng=np.random.default_rng(5)).x
    torch.testing.assert_close(path[0].predict(other), path[0].solution.predict(other))
    changed = validation.x.clone()
    path[1].shared.inputs, path[1].shared.version = changed, changed._version
    changed.mul_(2.0)  # in place: the version counter moves, the held block is stale
    torch.testing.assert_close(path[1].predict(changed), path[1].solution.predict(changed))


@pytest.mark.parametrize("method", ["falkon", "auto"])
def test_falkon_path_is_a_fit_per_ridge_sharing_one_validation_block(monkeypatch, method):
    # "auto" takes FALKON above CHOLESKY_MAX_SAMPLES (lowered here to 100). Each model is the
    # FALKON fit with the same generator state: same centers exactly, and predictions within
    # what two CG solutions of the same system to tol = 1e-8 can differ by (bounded rigorously
    # in tests/solvers/test_kernel_ridge_path.py; measured ≈ 1e-9 relative here), checked at
    # 1e-6 relative. All models share the centers, so the validation block K(x_val, centers)
    # is evaluated once for the whole path.
    monkeypatch.setattr(kernel_module, "CHOLESKY_MAX_SAMPLES", 100)
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=5, noise=0.1)
    data, validation = (task.sample(n, rng=np.random.default_rng(s)) for n, s in ((300, 1), (80, 2)))
    ridges = [1e-2, 1e-6, 1e-4]
    path = Kernel(kind="ntk", method=method, n_centers=40).fit_path(
        data, ridges, rng=np.random.default_rng(3))
    assert len(path) == len(ridges) and len({id(model.shared) for model in path}) == 1
    for ridge, model in zip(ridges, path):
        single = Kernel(kind="ntk", ridge=ridge, method="falkon", n_centers=40).fit(
            data, rng=np.random.default_rng(3))
        assert set(model.diagnostics) == set(single.diagnostics)
        assert model.diagnostics["converged"] == single.diagnostics["converged"] == 1.0
        assert model.diagnostics["n_centers"] == 40 and model.solution.method == "falkon"
        torch.testing.assert_close(model.solution.centers, single.solution.centers, rtol=0,
                                   atol=0)
        expected = single.predict(validation.x)
        gap = torch.linalg.vector_norm(model.solution.predict(validation.x) - expected)
        assert gap <= 1e-6 * torch.linalg.vector_norm(expected), ridge
    calls = _count_kernel_matrices(monkeypatch)
    for model in path:
        torch.testing.assert_close(model.predict(validation.x),
                                   model.solution.predict(validation.x), rtol=1e-12, atol=1e-12)
    assert calls == [80]


def _count_kernel_matrices(monkeypatch) -> list:
    """Rows of every kernel_matrix call made by lazylab.models.kernel from now on."""
    calls = []
    real = kernel_module.kernel_matrix

    def counted(kernel, x1, x2, **options):
        calls.append(x1.shape[0])
        return real(kernel, x1, x2, **options)

    monkeypatch.setattr(kernel_module, "kernel_matrix", counted)
    return calls


def _device_fits(**device):
    """The exact fit, the FALKON fit and both paths of one problem (``device=`` if given)."""
    task = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4, noise=0.1)
    data = task.sample(300, rng=np.random.default_rng(1))
    ridges = [1e-2, 1e-4]
    return [Kernel(kind="ntk", ridge=1e-4, **device).fit(data, rng=np.random.default_rng(3)),
            Kernel(kind="ntk", ridge=1e-4, method="falkon", n_centers=60, **device).fit(
                data, rng=np.random.default_rng(3)),
            *Kernel(kind="ntk", **device).fit_path(data, ridges, rng=np.random.default_rng(3)),
            *Kernel(kind="ntk", method="falkon", n_centers=60, **device).fit_path(
                data, ridges, rng=np.random.default_rng(3))]


def test_the_device_is_checked_and_the_cpu_named_is_the_default():
    with pytest.raises(ValueError, match="device must be"):
        Kernel(device="tpu")
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((50, 4)))
    for named, default in zip(_device_fits(device="cpu"), _device_fits()):
        assert named.solution.coef.device.type == named.solution.centers.device.type == "cpu"
        torch.testing.assert_close(named.predict(x), default.predict(x), rtol=0, atol=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_a_cuda_kernel_without_cuda_is_a_clear_error():
    data = TASKS["single_neuron"](rng=np.random.default_rng(0), dim=4).sample(
        20, rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match="CUDA is not available"):
        Kernel(device="cuda").fit(data, rng=np.random.default_rng(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_kernel_fits_and_paths_on_cuda_match_the_cpu_and_come_back_on_it():
    """Exact (Cholesky, its path) and FALKON (fit, path) on the GPU: the same centers, the
    predictions within 1e-6 relative of the CPU's (FALKON: two CG solutions to tol 1e-8 of the
    same system, bounded as in test_falkon_path_is_a_fit_per_ridge_sharing_one_validation_block)."""
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((50, 4)))
    for gpu, cpu in zip(_device_fits(device="cuda"), _device_fits()):
        assert gpu.solution.coef.device.type == gpu.solution.centers.device.type == "cpu"
        torch.testing.assert_close(gpu.solution.centers, cpu.solution.centers, rtol=0, atol=0)
        expected = cpu.predict(x)
        gap = torch.linalg.vector_norm(gpu.predict(x) - expected)
        assert gap <= 1e-6 * torch.linalg.vector_norm(expected)
