"""Learning curves along one NT online SGD run (models._tangent_online): a checkpoint is the run
after t steps, bit for bit a separate run of t steps with the same generator (the step size and
the draws do not depend on the budget); after the run's own stop it is the final model; bad
checkpoints are refused."""

from __future__ import annotations

import numpy as np
import pytest

from lazylab.models.neural_tangent import NeuralTangent
from lazylab.risk import population_risk
from lazylab.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_thread")

SGD = dict(width=4, activation="relu", solver="sgd", batch_size=20, learning_rate=0.3)


def _task():
    return TASKS["quadratic"](rng=np.random.default_rng(0), dim=5, noise=0.3)


@pytest.mark.parametrize("train_head", [False, True])
def test_a_checkpoint_is_a_separate_run_of_that_many_steps_to_the_bit(train_head):
    task, marks = _task(), (30, 170, 400)
    curve = NeuralTangent(**SGD, train_head=train_head, steps=400, sgd_tol=1e-12,
                          checkpoints=marks).fit(task, rng=np.random.default_rng(1))
    for t in marks:
        alone = NeuralTangent(**SGD, train_head=train_head, steps=t, sgd_tol=1e-12).fit(
            task, rng=np.random.default_rng(1))
        assert curve.diagnostics[f"population_risk_at_{t}"] == float(population_risk(alone, task))
    assert len({curve.diagnostics[f"population_risk_at_{t}"] for t in marks}) == 3


def test_checkpoints_after_the_run_stopped_hold_its_final_model():
    task = _task()
    model = NeuralTangent(**SGD, steps=20_000, sgd_tol=0.2, checkpoints=(50, 19_000)).fit(
        task, rng=np.random.default_rng(1))
    assert model.diagnostics["converged"] == 1.0 and model.diagnostics["steps"] < 19_000
    final = float(population_risk(model, task))
    assert model.diagnostics["population_risk_at_19000"] == final
    assert model.diagnostics["population_risk_at_50"] != final


def test_bad_checkpoints_are_refused():
    for options, message in (({"checkpoints": (5, 5)}, "strictly increasing"),
                             ({"checkpoints": (50,), "steps": 10}, "steps=10"),
                             ({"checkpoints": (5,), "solver": "cg"}, "solver='sgd'")):
        with pytest.raises(ValueError, match=message):
            NeuralTangent(**{**SGD, **options})
    regime = NeuralTangent(**SGD, steps=10, checkpoints=[5])
    assert regime.checkpoints == (5,)
    data = _task().sample(50, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="population moments"):
        regime.fit(data, rng=np.random.default_rng(0))
