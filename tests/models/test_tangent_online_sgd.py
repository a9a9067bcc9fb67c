"""NT online SGD (models._tangent_solvers.online_sgd) against its update written out per step.

online_sgd updates v in place and reads the batch losses at the window ends; the reference here
is the documented rule with a host read of every loss. They must agree bit for bit (same
operations on the same numbers), stop at the same step, and report a divergence at its step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lazylab.activations import get_activation
from lazylab.errors import DivergenceError
from lazylab.models._tangent_solvers import _step_size, _window_steps, online_sgd
from lazylab.models.neural_tangent import GatedFeatures, NeuralTangent
from lazylab.solvers.batches import on_device
from lazylab.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_thread")


def _features(train_head: bool, width=3, dim=4):
    weights = torch.from_numpy(np.random.default_rng(0).standard_normal((width, dim)) / 2)
    relu = get_activation("relu")
    return GatedFeatures(weights, relu.derivative(), relu if train_head else None)


def _draw(seed: int, poison: int | None = None):
    """Fresh (x, y) of a noisy quadratic target; y is NaN in the ``poison``-th step's batch
    (the calibration draw comes first)."""
    g, calls = np.random.default_rng(seed), []

    def draw(batch):
        calls.append(batch)
        x = torch.from_numpy(g.standard_normal((batch, 4)))
        y = (x * x).sum(1) - 4 + 0.5 * x[:, 0] + 0.3 * torch.from_numpy(g.standard_normal(batch))
        return x, y * (math.nan if len(calls) - 1 == poison else 1.0)

    return draw


def _reference(features, draw, learning_rate, batch_size, steps, tol, ridge):
    """The update of online_sgd's docstring, out of place, every loss read at its step:
    (vector, offset, steps, converged, final loss, [(step, loss)])."""
    step_size, trace, _ = _step_size(features, draw, learning_rate, batch_size)
    vector = torch.zeros(features.size, dtype=torch.float64)
    offset = torch.zeros((), dtype=torch.float64)
    window = _window_steps(batch_size, features.size + 1, step_size, trace)
    losses, seen, previous = [], [], None
    for step in range(1, steps + 1):
        x, y = draw(batch_size)
        value, gates, heads = features.batch_value(x, vector)
        residual = value + offset - y
        loss = float(residual @ residual) / batch_size
        losses.append(loss)
        seen.append((step, loss))
        # v − η(g/b + λv), as online_sgd rounds it: (1 − ηλ)v, then the GEMM accumulating
        # −(η/b)(G∘r)ᵀX into it (and −(η/b)Hᵀr into the head)
        directions, head = features.unpack(vector * (1.0 - step_size * ridge) if ridge else vector)
        directions = torch.addmm(directions, (gates * residual[:, None]).T, x,
                                 alpha=-step_size / batch_size)
        vector = features.pack(directions, None if head is None else torch.add(
            head, heads.T @ residual, alpha=-step_size / batch_size))
        offset = offset - step_size * residual.mean()
        if len(losses) == window:
            current, losses = sum(losses) / window, []
            if previous is not None and abs(current - previous) <= tol * current:
                return vector, float(offset), step, True, current, seen
            previous = current
    final = sum(losses) / len(losses) if losses else previous
    return vector, float(offset), steps, False, final, seen


@pytest.mark.parametrize("train_head, ridge, steps, tol", [(False, 0.0, 730, 1e-12),
                                                           (True, 0.05, 730, 1e-12),
                                                           (True, 0.0, 5000, 0.05)])
def test_online_sgd_equals_the_update_written_out(train_head, ridge, steps, tol):
    """Budget runs ending mid-window (with and without a head and a ridge) and a run stopped
    by its tolerance: identical parameters, steps, stop, final loss and callback calls."""
    features = _features(train_head)
    expected = _reference(features, _draw(1), 0.1, 20, steps, tol, ridge)
    calls = []
    result = online_sgd(features, _draw(1), learning_rate=0.1, batch_size=20, steps=steps,
                        tol=tol, ridge=ridge, callback=lambda step, loss: calls.append((step, loss)))
    vector, offset, stopped, converged, final, seen = expected
    assert torch.equal(result.vector, vector) and result.offset == offset
    assert (result.steps, result.converged, result.final_loss) == (stopped, converged, final)
    assert calls == seen
    assert (converged, stopped < steps) == ((True, True) if tol == 0.05 else (False, False))


def test_online_sgd_divergence_names_its_step_after_the_steps_before_it():
    """A NaN batch at step 7 raises DivergenceError naming step 7 (not the window end where it
    is read); the callback saw steps 1–6 and no more."""
    calls = []
    with pytest.raises(DivergenceError, match="diverged at step 7") as caught:
        online_sgd(_features(False), _draw(2, poison=7), learning_rate=0.1, batch_size=20,
                   steps=500, tol=1e-12, callback=lambda step, loss: calls.append(step))
    assert caught.value.step == 7 and calls == [1, 2, 3, 4, 5, 6]


def test_device_blocks_hand_out_the_per_batch_draws():
    """``on_device``: blocks of ⌊rows/b⌋ batches, sliced, are the per-batch draws of a noise-free
    stream, number for number; a larger request (the calibration) is drawn alone; the result is
    on the device asked for."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=4)
    blocked = on_device(task.batch_sampler(rng=np.random.default_rng(5)), torch.device("cpu"),
                        rows=25)
    plain = task.batch_sampler(rng=np.random.default_rng(5))
    for batch in (40, 10, 10, 10, 10, 10, 10):  # 40 > rows: alone; then 3 blocks of 2
        for got, expected in zip(blocked(batch), plain(batch)):
            torch.testing.assert_close(got, expected, rtol=0, atol=0)
    got = blocked(3)  # 3 does not divide the held block: a fresh one of 8 batches
    assert got[0].shape == (3, 4) and got[0].device.type == "cpu"


def test_device_is_checked():
    with pytest.raises(ValueError, match="device must be"):
        NeuralTangent(width=3, solver="sgd", device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_sgd_on_cuda_without_cuda_is_a_clear_error():
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=4)
    with pytest.raises(ValueError, match="CUDA is not available"):
        NeuralTangent(width=3, solver="sgd", steps=5, device="cuda").fit(
            task, rng=np.random.default_rng(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sgd_on_cuda_matches_the_cpu():
    """The same float64 numbers (noise-free task: blocks are the per-step draws), the same
    updates on the GPU: the fits agree to round-off and come back on the CPU."""
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=6)
    fits = {device: NeuralTangent(width=5, solver="sgd", steps=300, batch_size=20,
                                  sgd_tol=1e-12, device=device).fit(
        task, rng=np.random.default_rng(1)) for device in ("cpu", "cuda")}
    assert fits["cuda"].directions.device.type == "cpu"
    torch.testing.assert_close(fits["cuda"].directions, fits["cpu"].directions,
                               rtol=1e-9, atol=1e-12)
    offsets = {device: float(fit.offset) for device, fit in fits.items()}
    assert offsets["cuda"] == pytest.approx(offsets["cpu"], rel=1e-9, abs=1e-12)
