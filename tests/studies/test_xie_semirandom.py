"""xie-semirandom: smoke end to end, the digits task, and the kernel spectrum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lazylab.models.kernel import DualKernel
from lazylab.studies import STUDIES, reproduce
from lazylab.studies.xie_semirandom import kernel_spectrum
from lazylab.tasks import TASKS


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("xie")
    return reproduce("xie-semirandom", scale="smoke", executor="inprocess", output_dir=out,
                     quiet=True)


def test_smoke_writes_every_output(smoke):
    assert "xie-semirandom" in STUDIES
    assert smoke["runs"]["failed"] == 0 and smoke["runs"]["done"] == smoke["runs"]["total"] > 0
    for path in [*smoke["figures"], smoke["csv"], smoke["summary"]]:
        assert path.exists() and path.stat().st_size > 0
    assert "Separations observed" in smoke["summary"].read_text()


def test_semi_random_beats_random_features(smoke):
    table = pd.read_csv(smoke["csv"])
    for data in ("synthetic", "digits"):
        part = table[table["data"] == data]
        assert np.isfinite(part["y"]).all() and (part["y"] > 0).all()
        widest = part[part["x"] == part["x"].max()].set_index("series")["y"]
        best_semi_random = min(widest["sr0"], widest["sr1"])
        # smoke: RF/semi-random ≈ 1.7 (synthetic) and 2.5 (digits) at the widest N
        assert widest["rf"] > 1.3 * best_semi_random
        assert widest["network"] < widest["rf"]


def test_digits_task_splits_without_replacement():
    task = TASKS["digits"](rng=np.random.default_rng(3), label="parity")
    train, test = task.sample(1000, rng=np.random.default_rng(0)), task.sample(797, rng=None)
    rows = {tuple(r) for r in train.x.numpy().round(9)}
    assert not any(tuple(r) in rows for r in test.x.numpy().round(9))
    assert set(np.unique(train.y.numpy())) == {-1.0, 1.0}
    both = torch.cat([train.y, test.y])
    assert task.null_risk == pytest.approx(float(both.var(unbiased=False)))
    mean = torch.cat([train.x, test.x]).mean(0)
    assert torch.allclose(mean, torch.zeros(64, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="exceeds"):
        task.sample(1, rng=None)


def test_kernel_spectrum_matches_the_gram_trace():
    x = torch.as_tensor(np.random.default_rng(1).standard_normal((60, 5)))
    for kind, degree in (("semi_random", 0), ("semi_random", 1), ("rf", 0)):
        values = kernel_spectrum(x, kind, degree)
        gram = DualKernel(kind, "relu", degree)(x, x)
        assert np.all(np.diff(values) <= 1e-12) and values.min() >= 0
        assert values.sum() == pytest.approx(float(torch.trace(gram)) / 60, rel=1e-10)
