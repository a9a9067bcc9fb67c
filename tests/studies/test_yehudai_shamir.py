"""yehudai-shamir: the smoke scale end to end, and the helpers that turn curves into numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lazylab.experiments import load_sweep
from lazylab.studies import STUDIES, reproduce
from lazylab.studies.base import spec_to_toml
from lazylab.studies.yehudai_shamir import THRESHOLD, required_width, sweeps


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("ys")
    return reproduce("yehudai-shamir", scale="smoke", executor="inprocess", output_dir=out,
                     quiet=True)


def test_smoke_writes_every_output(smoke):
    assert smoke["runs"]["failed"] == 0 and smoke["runs"]["diverged"] == 0
    assert smoke["runs"]["done"] == smoke["runs"]["total"] > 0
    for path in [*smoke["figures"], smoke["csv"], smoke["summary"]]:
        assert path.exists() and path.stat().st_size > 0
    assert {p.suffix for p in smoke["figures"]} == {".png", ".pdf"}
    text = smoke["summary"].read_text()
    assert "required r grows like" in text and "Gradient descent reaches" in text


def test_smoke_shows_the_separation(smoke):
    table = pd.read_csv(smoke["csv"])
    risk = table[table["panel"] == "risk"]
    assert np.isfinite(risk["y"]).all() and (risk["y"] > -1e-9).all()
    needed = table[(table["panel"] == "required_width") & (table["family"] == "rf")]
    by_dim = dict(zip(needed["dim"], needed["y"]))
    # more random features are needed at d = 4 than at d = 2 (smoke: about 8 against 39)
    assert math.isfinite(by_dim[2]) and by_dim[4] > 2 * by_dim[2]
    gd = risk[risk["family"] == "gd"]
    assert set(gd["dim"]) == {2, 4} and (gd["y"] < 1e-4).all()       # one trained neuron
    one_feature = risk[(risk["family"] == "rf") & (risk["x"] == 1)]
    assert (one_feature["y"] > 0.5).all()                               # one random feature


def test_required_width_interpolates_and_censors():
    widths, risks = [1, 10, 100], [1.0, THRESHOLD * 10, THRESHOLD / 10]
    assert required_width(widths, risks) == pytest.approx(10 ** 1.5)   # log-log midpoint
    assert required_width(widths, [1.0, 0.5, 0.1]) == math.inf
    assert required_width(widths, [0.0, 0.5, 0.1]) == 1.0


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_every_scale_validates(scale, tmp_path):
    assert "yehudai-shamir" in STUDIES
    for spec in sweeps(scale):
        path = tmp_path / f"{spec['name']}.toml"
        path.write_text(spec_to_toml(spec))
        sweep = load_sweep(path)
        assert len(sweep.runs) > 0
