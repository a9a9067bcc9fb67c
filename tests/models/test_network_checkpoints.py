"""Learning curves along one online run (models._network_checkpoints): a checkpoint is the run's
state after t steps, bit for bit a separate run of t steps where nothing depends on the budget;
past an early stop it is the final state; bad checkpoints are refused; a sweep stores them and
``learning_curve`` reads them back, one row per checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lazylab.experiments import (InProcessExecutor, SpecError, Store, learning_curve,
                                 load_sweep, results_frame, run_sweep)
from lazylab.models._network_training import exact_risk
from lazylab.models.network import Network
from lazylab.solvers.training import train
from lazylab.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_thread")

ONLINE = dict(width=6, activation="quadratic", training="online", batch_size=100,
              learning_rate=0.01)


def _task(dim=8, noise=0.5):
    return TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, noise=noise)


@pytest.mark.parametrize("options", [{}, {"momentum": 0.9, "dtype": "float32"},
                                     {"laziness": 2.0, "parameterization": "ntk"}])
def test_a_checkpoint_is_a_separate_run_of_that_many_steps_to_the_bit(options):
    """Constant schedule, fixed budget, t × batch ≥ 10⁴ (the same blocks of online draws, x
    and the noise): the exact risk after 100 and 250 of 400 steps equals that of runs of 100
    and 250 steps; the last checkpoint is the returned network."""
    task, marks = _task(), (100, 250, 400)
    curve = Network(**ONLINE, **options, steps=400, checkpoints=marks).fit(
        task, rng=np.random.default_rng(1))
    for t in marks:
        alone = Network(**ONLINE, **options, steps=t).fit(task, rng=np.random.default_rng(1))
        assert curve.diagnostics[f"population_risk_at_{t}"] == float(exact_risk(alone, task))
    assert curve.diagnostics["population_risk_at_400"] == float(exact_risk(curve, task))
    assert len({curve.diagnostics[f"population_risk_at_{t}"] for t in marks}) == 3  # 3 states


def test_checkpoints_after_an_early_stop_hold_the_final_state():
    """A run to tolerance that stops at step s < t reports its final network at t."""
    task = _task()
    model = Network(**ONLINE, max_steps=5000, tol=0.5, checkpoints=(100, 4000, 5000)).fit(
        task, rng=np.random.default_rng(1))
    stopped = int(model.diagnostics["steps"])
    assert 100 < stopped < 4000 and model.diagnostics["stop_reason"] == 0
    final = float(exact_risk(model, task))
    assert model.diagnostics["population_risk_at_4000"] == final
    assert model.diagnostics["population_risk_at_5000"] == final
    assert model.diagnostics["population_risk_at_100"] != final


def test_the_loop_calls_its_hook_right_after_each_checkpoint_update():
    """``train``'s on_checkpoint(t) sees θ after exactly t updates (a separate train of t
    steps on the same batches gives the same θ), once per checkpoint, in order."""
    target = torch.tensor([1.0, -2.0], dtype=torch.float64)
    batches = [(torch.eye(2, dtype=torch.float64), target)] * 50

    def run(steps, marks=()):
        theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        seen = []
        train([theta], lambda x, y: torch.mean((x @ theta - y) ** 2), iter(batches),
              learning_rate=0.1, steps=steps, checkpoints=marks,
              on_checkpoint=lambda t: seen.append((t, theta.detach().clone())))
        return theta.detach(), seen

    _, seen = run(30, (3, 10, 30))
    assert [t for t, _ in seen] == [3, 10, 30]
    for t, theta in seen:
        assert torch.equal(theta, run(t)[0])
    with pytest.raises(ValueError, match="on_checkpoint"):
        train([torch.zeros(1, requires_grad=True)], lambda x, y: x.sum(), iter(batches),
              learning_rate=0.1, steps=3, checkpoints=(2,))


def test_bad_checkpoints_are_refused():
    for marks, message in (((200, 100), "strictly increasing"), ((0, 10), "strictly increasing"),
                           ((True, 5), "strictly increasing"), ((100, 600), "step budget 500")):
        with pytest.raises(ValueError, match=message):
            Network(**ONLINE, steps=500, checkpoints=marks)
    with pytest.raises(ValueError, match="training='online'"):
        Network(width=3, training="population", steps=10, checkpoints=(5,))
    data = _task().sample(200, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="not to a Dataset"):
        Network(**ONLINE, steps=10, checkpoints=(5,)).fit(data, rng=np.random.default_rng(0))
    assert Network(**ONLINE, steps=10, checkpoints=[5, 10]).checkpoints == (5, 10)


class _NoMoments:
    dim, has_moments = 3, False

    def sample(self, n, *, rng):
        return _task(3).sample(n, rng=rng)


def test_checkpoints_need_a_task_with_an_exact_risk():
    with pytest.raises(ValueError, match="population moments"):
        Network(**ONLINE, steps=10, checkpoints=(5,)).fit(_NoMoments(),
                                                          rng=np.random.default_rng(0))


SPEC = """
[task]
name = "quadratic"
dim = 8

[[regime]]
name = "network"
width = 6
activation = "quadratic"
training = "online"
batch_size = 100
learning_rate = 0.01
steps = 300
checkpoints = [100, 200, 300]

[sweep]
n_train = "population"
n_test = 20
seeds = 2
metrics = ["population_risk", "risk_normalized", "population_risk_at_100"]
"""


def test_a_sweep_stores_the_curve_and_learning_curve_reads_it_back(tmp_path):
    """Two seeds × three checkpoints: six rows; the last checkpoint is the run's final risk,
    normalized by the same null risk; samples = steps × batch."""
    spec = tmp_path / "curve.toml"
    spec.write_text(SPEC)
    sweep = load_sweep(spec)
    with Store(tmp_path / "s.sqlite") as store:
        run_sweep(sweep, store, executor=InProcessExecutor())
        frame = results_frame(sweep, store)
    curve = learning_curve(frame)
    assert len(curve) == 6 and list(curve["step"]) == [100, 200, 300] * 2
    assert list(curve["samples"]) == [10_000, 20_000, 30_000] * 2
    last = curve[curve["step"] == 300].set_index("run_id")
    final = frame.set_index("run_id")
    np.testing.assert_allclose(last["population_risk"], final.loc[last.index, "population_risk"],
                               rtol=1e-12)
    np.testing.assert_allclose(last["risk_normalized"], final.loc[last.index, "risk_normalized"],
                               rtol=1e-12)
    assert "test_risk" not in curve.columns and "seed" in curve.columns
    bare = learning_curve(frame.drop(columns=["risk_normalized"]))   # no null risk to divide by
    assert "risk_normalized" not in bare.columns
    np.testing.assert_array_equal(bare["population_risk"], curve["population_risk"])
    with pytest.raises(ValueError, match="population_risk_at_<t>"):
        learning_curve(frame.drop(columns=[c for c in frame.columns if "_at_" in c]))
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace('"population_risk_at_100"', '"population_risk_at"'))
    with pytest.raises(SpecError, match="population_risk_at_<t>"):
        load_sweep(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_checkpoints_are_separate_runs_there_too():
    """On a GPU (float32 draws made there in blocks of min(10⁴ rows, budget × batch)): the
    copies taken on the device equal separate device runs of 100 and 200 steps."""
    task, options = _task(), dict(ONLINE, dtype="float32", device="cuda")
    curve = Network(**options, steps=300, checkpoints=(100, 200)).fit(
        task, rng=np.random.default_rng(1))
    for t in (100, 200):
        alone = Network(**options, steps=t).fit(task, rng=np.random.default_rng(1))
        assert curve.diagnostics[f"population_risk_at_{t}"] == float(exact_risk(alone, task))
