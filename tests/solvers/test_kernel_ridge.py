"""Kernel ridge: exact formula, blocked kernel evaluation, FALKON against its own closed form
and against exact KRR as the number of Nyström centers grows.

Tolerances: with an RBF kernel and nλ ≥ 0.1, cond(K + nλI) ≤ (n + nλ)/(nλ) ≈ 10³, so a direct solve
is accurate to about 10³ · ε ≈ 10⁻¹³ relative; checks use 10⁻¹⁰. FALKON's CG stops at relative
residual tol on the preconditioned system, whose condition number is O(1) when M is large enough,
so the error in β is about tol; it solves H_δ = H + λnδI with the jitter δ = 10⁻¹¹ · mean diag
K_MM, which moves predictions by far less than 10⁻⁶. FALKON checks compare predictions to 10⁻⁶.
"""

import numpy as np
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.solvers import kernel_matrix, kernel_ridge


def rbf(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """exp(−‖x − y‖²/2)."""
    return torch.exp(-torch.cdist(x1, x2).square() / 2)


def _data(n: int, seed: int, dim: int = 2):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((n, dim)))
    y = torch.sin(2 * x[:, 0]) + x[:, 1] * torch.cos(x[:, 0]) + \
        0.1 * torch.from_numpy(rng.standard_normal(n))
    return x, y, torch.from_numpy(rng.standard_normal((200, dim)))


@pytest.mark.parametrize("ridge, route", [(1e-3, "cholesky-mixed"), (1e-9, "cholesky")])
def test_large_well_conditioned_fits_refine_a_float32_factor(monkeypatch, ridge, route):
    """From MIXED_MIN_SIZE on (lowered to 100 here), nλ with (tr K + nλ)/(nλ) ≤ 10⁶ takes the
    float32 factor refined in float64 ("cholesky-mixed") and gives the explicit formula's α to
    1e-10; λ = 1e-9 (bound 10⁹) keeps the float64 factor."""
    from lazylab.solvers import ridge as ridge_module
    monkeypatch.setattr(ridge_module, "MIXED_MIN_SIZE", 100)
    x, y, _ = _data(300, seed=0)
    alpha = np.linalg.solve(rbf(x, x).numpy() + 300 * ridge * np.eye(300), y.numpy())
    fit = kernel_ridge(rbf, x, y, ridge=ridge, method="cholesky")
    assert fit.method == route
    tolerance = 1e-10 if route == "cholesky-mixed" else 1e-5
    assert np.linalg.norm(fit.coef.numpy() - alpha) <= tolerance * np.linalg.norm(alpha)


def test_cholesky_equals_explicit_formula_and_predicts_with_it():
    x, y, x_test = _data(300, seed=0)
    ridge = 1e-3
    alpha = np.linalg.solve(rbf(x, x).numpy() + 300 * ridge * np.eye(300), y.numpy())
    fit = kernel_ridge(rbf, x, y, ridge=ridge, method="cholesky", block_size=37)
    assert fit.method == "cholesky" and fit.iterations == 0 and fit.converged
    assert np.isnan(fit.residual)  # not computed: it would cost a second kernel evaluation
    np.testing.assert_allclose(fit.coef.numpy(), alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit.predict(x_test, block_size=11).numpy(),
                               rbf(x_test, x).numpy() @ alpha, rtol=1e-10, atol=1e-12)


def test_auto_is_cholesky_for_small_n_and_handles_several_targets():
    x, y, x_test = _data(120, seed=1)
    targets = torch.stack([y, -2 * y + 1], dim=1)
    fit = kernel_ridge(rbf, x, targets, ridge=1e-2)
    single = kernel_ridge(rbf, x, y, ridge=1e-2)
    assert fit.method == "cholesky" and fit.coef.shape == (120, 2)
    torch.testing.assert_close(fit.predict(x_test)[:, 0], single.predict(x_test),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block_size", [1, 7, None])
def test_kernel_matrix_in_blocks_equals_one_call(block_size):
    x, _, x_test = _data(50, seed=2)
    # cdist may switch between its direct and matmul paths with the block's size: ε-level only
    torch.testing.assert_close(kernel_matrix(rbf, x_test, x, block_size=block_size),
                               rbf(x_test, x), rtol=0, atol=1e-14)


def test_singular_kernel_without_ridge_falls_back_to_min_norm_interpolant():
    # Linear kernel on three copies of x = 1: K = 11ᵀ exactly, second Cholesky pivot exactly 0.
    # K⁺ = 11ᵀ/9, so α = (2/3)·1 and f(1) = Σα = 2 = y: the min-norm interpolant.
    x = torch.ones(3, 1, dtype=torch.float64)
    y = torch.full((3,), 2.0, dtype=torch.float64)
    fit = kernel_ridge(lambda a, b: a @ b.T, x, y, ridge=0.0, method="cholesky")
    assert fit.method == "eigh"
    torch.testing.assert_close(fit.coef, torch.full((3,), 2 / 3, dtype=torch.float64))
    torch.testing.assert_close(fit.predict(x), y)


def test_falkon_with_all_points_as_centers_equals_exact_krr():
    # M = n: H = K(K + nλI), K_nMᵀy = Ky, so Nyström predictions equal exact KRR predictions.
    x, y, x_test = _data(400, seed=3)
    exact = kernel_ridge(rbf, x, y, ridge=1e-3, method="cholesky").predict(x_test)
    # K_MM = K is numerically singular here (RBF, d = 2): rounding amplified through T⁻¹ floors
    # the recomputed residual near 1.5e-8 (measured), so the tolerance is 1e-7.
    fit = kernel_ridge(rbf, x, y, ridge=1e-3, method="falkon", n_centers=400,
                       rng=np.random.default_rng(0), tol=1e-7)
    assert fit.method == "falkon" and fit.converged and 1 <= fit.iterations <= 100
    torch.testing.assert_close(fit.predict(x_test), exact, rtol=0, atol=1e-6)


@pytest.mark.parametrize("block_size", [97, None])
def test_falkon_solves_the_nystrom_normal_equations(block_size):
    # α = (K_nMᵀK_nM + λnK_MM)⁻¹K_nMᵀy with the centers FALKON drew (FALKON eq. 8): M < n, the
    # dense Nyström solve. In d = 4 cond(K_MM) ≈ 10³, far below 1/δ ≈ 10¹¹, so the jitter is
    # invisible and H (cond ≈ 10⁶) is solved directly to ~10⁻¹⁰.
    x, y, x_test = _data(500, seed=4, dim=4)
    ridge = 1e-3
    fit = kernel_ridge(rbf, x, y, ridge=ridge, method="falkon", n_centers=60,
                       rng=np.random.default_rng(1), tol=1e-12, block_size=block_size)
    k_nm, k_mm = rbf(x, fit.centers).numpy(), rbf(fit.centers, fit.centers).numpy()
    alpha = np.linalg.solve(k_nm.T @ k_nm + ridge * 500 * k_mm, k_nm.T @ y.numpy())
    assert fit.centers.shape == (60, 4) and fit.converged
    np.testing.assert_allclose(fit.predict(x_test).numpy(), rbf(x_test, fit.centers).numpy()
                               @ alpha, rtol=0, atol=1e-6)


def test_falkon_approaches_exact_krr_as_centers_grow():
    # Nyström error decays with the kernel's spectrum (fast for a smooth RBF in d = 2): the
    # prediction gap should shrink at every doubling up to noise, and by far overall. K_MM is
    # numerically singular here from M ≈ 100 on: this exercises the jittered Cholesky factor.
    x, y, x_test = _data(2000, seed=5)
    exact = kernel_ridge(rbf, x, y, ridge=1e-3, method="cholesky").predict(x_test)
    gaps = []
    for centers in (10, 20, 40, 80, 160, 320):
        fit = kernel_ridge(rbf, x, y, ridge=1e-3, method="falkon", n_centers=centers,
                           rng=np.random.default_rng(centers), tol=1e-10)
        assert fit.iterations <= 100
        gaps.append(float(torch.sqrt(torch.mean((fit.predict(x_test) - exact) ** 2))))
    assert all(later <= 1.5 * earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] <= gaps[0] / 20, gaps


def test_falkon_centers_are_reproducible_from_the_generator():
    x, y, _ = _data(300, seed=6)
    fits = [kernel_ridge(rbf, x, y, ridge=1e-2, method="falkon", n_centers=30,
                         rng=np.random.default_rng(7)) for _ in range(2)]
    torch.testing.assert_close(fits[0].centers, fits[1].centers, rtol=0, atol=0)


@pytest.mark.parametrize("arguments,message", [
    (dict(ridge=-1.0), r"ridge must be a finite number >= 0, got -1.0"),
    (dict(ridge=0.1, method="svd"), r"method must be 'auto' or one of \['cholesky', 'falkon'\]"),
    (dict(ridge=0.0, method="falkon", rng=np.random.default_rng(0)), r"ridge must be > 0"),
    (dict(ridge=0.1, method="falkon", rng=np.random.default_rng(0), n_centers=21),
     r"n_centers must be in \[1, n=20\], got 21"),
    (dict(ridge=0.1, tol=0.0), r"tol must be a finite number > 0, got 0.0"),
    (dict(ridge=0.1, memory_budget=-1.0), r"memory_budget must be a number of bytes >= 0"),
])
def test_invalid_arguments_are_rejected_with_their_values(arguments, message):
    x, y, _ = _data(20, seed=8)
    with pytest.raises(ValueError, match=message):
        kernel_ridge(rbf, x, y, **arguments)


def test_bad_shapes_missing_rng_and_bad_kernel_are_rejected():
    x, y, _ = _data(20, seed=9)
    with pytest.raises(ValueError, match=r"y must have shape \(20,\).*got shape \(19,\)"):
        kernel_ridge(rbf, x, y[:19], ridge=0.1)
    with pytest.raises(ValueError, match=r"x must have shape \(n, d\)"):
        kernel_ridge(rbf, x[:, 0], y, ridge=0.1)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        kernel_ridge(rbf, x, y, ridge=0.1, method="falkon", rng=None)
    with pytest.raises(ValueError, match=r"kernel\(x1, x2\) must return shape \(20, 20\)"):
        kernel_ridge(lambda a, b: rbf(a, b)[:, :5], x, y, ridge=0.1)


def test_falkon_certificate_false_on_a_tiny_budget_and_true_with_residual_below_tolerance():
    # d = 4 RBF with M = 80 needs several CG steps to reach 1e-9; one step cannot.
    x, y, _ = _data(600, seed=10, dim=4)
    options = dict(ridge=1e-4, method="falkon", n_centers=80, tol=1e-9)
    short = kernel_ridge(rbf, x, y, rng=np.random.default_rng(2), max_iter=1, **options)
    assert not short.converged and short.iterations == 1 and short.residual > 1e-9
    full = kernel_ridge(rbf, x, y, rng=np.random.default_rng(2), max_iter=200, **options)
    assert short.stop_reason == "budget"
    # CG's contract: converged means the recomputed residual is <= tol
    assert full.converged and 1 < full.iterations < 200 and full.residual <= 1e-9
    assert full.stop_reason == "tolerance"


def test_falkon_blocked_products_equal_the_kept_kernel_to_round_off():
    # memory_budget=0 recomputes K_nM in blocks of 37 rows at every product; the sums differ
    # from the kept matrix's only in association order, so α agrees to ~cond · ε. (K_MM too is
    # evaluated in 37-row blocks, rounded differently: at tol = 1e-12 on this ill-conditioned
    # RBF system CG may take one step more or fewer.)
    x, y, x_test = _data(500, seed=11, dim=4)
    options = dict(ridge=1e-3, method="falkon", n_centers=60, tol=1e-12, max_iter=200)
    kept = kernel_ridge(rbf, x, y, rng=np.random.default_rng(3), **options)
    blocked = kernel_ridge(rbf, x, y, rng=np.random.default_rng(3), memory_budget=0,
                           block_size=37, **options)
    assert kept.storage == "float64" and blocked.storage == "recomputed"
    assert abs(kept.iterations - blocked.iterations) <= 1 and kept.jitter == blocked.jitter
    torch.testing.assert_close(blocked.predict(x_test), kept.predict(x_test),
                               rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("ridge", [1e-3, 1e-5])
def test_falkon_float32_copy_of_the_kernel_moves_predictions_by_round_off_only(ridge):
    # A budget of exactly n·M·4 bytes keeps K_nM in float32 (entries rounded once, relative
    # 2⁻²⁴ ≈ 6e-8; products still accumulate in float64). CG solves that rounded system to tol,
    # so predictions move by a few 2⁻²⁴ relative to max|f| (measured ≤ 1.4e-7): checked at 1e-6.
    x, y, x_test = _data(500, seed=11, dim=20)
    kernel = DualKernel("ntk")
    options = dict(ridge=ridge, method="falkon", n_centers=60, tol=1e-12, max_iter=300)
    double = kernel_ridge(kernel, x, y, rng=np.random.default_rng(3), **options)
    single = kernel_ridge(kernel, x, y, rng=np.random.default_rng(3),
                          memory_budget=500 * 60 * 4, **options)
    assert double.storage == "float64" and single.storage == "float32" and single.converged
    reference = double.predict(x_test)
    gap = float((single.predict(x_test) - reference).abs().max() / reference.abs().max())
    assert gap <= 1e-6, gap


def _device_fit(device: str):
    x, y, x_test = _data(300, seed=12, dim=3)
    fit = kernel_ridge(rbf, x, y, ridge=1e-3, method="falkon", n_centers=50, tol=1e-10,
                       rng=np.random.default_rng(4), device=device)
    return fit, fit.predict(x_test).cpu(), kernel_ridge(rbf, x, y, ridge=1e-3, method="falkon",
                                                        n_centers=50, tol=1e-10,
                                                        rng=np.random.default_rng(4))


def test_falkon_device_argument_on_cpu_runs_the_device_path():
    fit, predictions, reference = _device_fit("cpu")
    assert fit.coef.device.type == "cpu" and fit.converged
    torch.testing.assert_close(predictions, reference.predict(_data(300, seed=12, dim=3)[2]),
                               rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_falkon_on_cuda_matches_cpu():
    fit, predictions, reference = _device_fit("cuda")
    assert fit.coef.device.type == "cuda" and fit.converged
    torch.testing.assert_close(predictions, reference.predict(_data(300, seed=12, dim=3)[2]),
                               rtol=0, atol=1e-8)
