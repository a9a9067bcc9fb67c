"""Sweep figures: aggregation over seeds, series, theory curves, markers, files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lazylab.plots import aggregate, axis_label, draw_points, plot_results, plt, save_figure

FIELDS = ("task", "regime", "n_train", "n_test", "seed", "width", "dim")


def _frame():
    rows = []
    for seed, noise in enumerate((0.0, 0.3, -0.3)):
        for width in (5, 10, 20):
            rows.append(dict(task="t", regime="rf", n_train=100, n_test=50, seed=seed,
                             width=width, dim=10, risk=1.0 / width + noise))
        rows.append(dict(task="t", regime="kernel", n_train=100, n_test=50, seed=seed,
                         width=math.nan, dim=10, risk=0.05 + noise / 10))
    return pd.DataFrame(rows)


def test_aggregate_mean_and_standard_error():
    table = aggregate(_frame(), "width", "risk", ["regime"])
    rf = table[table.regime == "rf"].set_index("width")
    assert rf.loc[10, "mean"] == pytest.approx(0.1, abs=1e-15)
    # values 0.1 + (0, 0.3, -0.3): sample std 0.3, standard error 0.3 / sqrt(3)
    assert rf.loc[10, "sem"] == pytest.approx(0.3 / math.sqrt(3), rel=1e-12)
    assert (rf["count"] == 3).all()
    kernel = table[table.regime == "kernel"]
    assert len(kernel) == 1 and math.isnan(kernel["width"].iloc[0])
    single = aggregate(_frame()[lambda f: f.seed == 0], "width", "risk", ["regime"])
    assert (single["sem"] == 0).all()


def test_aggregate_ignores_missing_metrics():
    frame = _frame()
    frame.loc[0, "risk"] = np.nan  # a diverged run has no risk
    table = aggregate(frame, "width", "risk", ["regime"]).set_index(["regime", "width"])
    assert table.loc[("rf", 5), "count"] == 2


def test_plot_series_theory_marker_and_labels():
    curve_calls = []

    def theory(x_values, *, dim):
        curve_calls.append(dim)
        return 1.0 / np.asarray(x_values)

    figure = plot_results(_frame(), x="width", y="risk", series="regime", fields=FIELDS,
                          task_fields=("dim",), log_x=True, log_y=True,
                          theory={"inverse": theory})
    axes = figure.axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == ["kernel (no width)", "theory: inverse", "N = d = 10", "rf"]
    assert curve_calls == [10]
    theory_line = next(line for line in axes.get_lines() if line.get_label() == "theory: inverse")
    x, y = theory_line.get_data()
    assert x[0] == pytest.approx(5) and x[-1] == pytest.approx(20)
    np.testing.assert_allclose(y, 1.0 / x)
    kernel = next(line for line in axes.get_lines() if line.get_label() == "kernel (no width)")
    assert kernel.get_ydata()[0] == pytest.approx(0.05)
    assert axes.get_xscale() == "log" and axes.get_yscale() == "log"
    assert axes.get_xlabel() == "width N (hidden units)"
    assert "3 seeds" in axes.get_title()


def test_series_split_by_other_varying_fields():
    frame = _frame()
    frame2 = frame.assign(n_train=400, risk=frame.risk / 2)
    figure = plot_results(pd.concat([frame, frame2]), x="width", y="risk", series="regime",
                          fields=FIELDS)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "rf (n_train=100)" in labels and "rf (n_train=400)" in labels


def test_population_is_drawn_as_a_level_in_sample_size_plots():
    frame = pd.DataFrame(dict(task="t", regime="rf", n_test=1, seed=0, width=4, dim=3,
                              n_train=[10, 100, math.inf], risk=[0.5, 0.2, 0.1]))
    figure = plot_results(frame, x="n_train", y="risk", series="regime", fields=FIELDS)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels == ["rf (n = ∞)", "n = d = 3", "rf"]


def test_normalized_risk_label_says_what_it_is_normalized_by():
    assert "R / R₀" in axis_label("risk_normalized") and "best constant" in axis_label(
        "risk_normalized")
    assert axis_label("steps_to_divergence") == "steps to divergence"


def test_save_png_and_pdf(tmp_path):
    figure = plot_results(_frame(), x="width", y="risk", series="regime", fields=FIELDS)
    paths = save_figure(figure, tmp_path / "fig", ("png", "pdf"))
    assert [p.name for p in paths] == ["fig.png", "fig.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:5] == b"%PDF-"


def test_empty_frame_is_an_error():
    with pytest.raises(ValueError, match="no finished runs"):
        plot_results(pd.DataFrame(), x="width", y="risk", series="regime", fields=FIELDS)


def test_theory_curves_may_receive_the_task_instance():
    received = []

    def builder(params):
        received.append(params)
        return {"level": 0.25 * params["dim"]}

    def level(x_values, *, task):
        return np.full(np.shape(x_values), task["level"])

    figure = plot_results(_frame(), x="width", y="risk", series="regime", fields=FIELDS,
                          task_fields=("dim",), theory={"level": level}, task_builder=builder)
    line = next(l for l in figure.axes[0].get_lines() if l.get_label() == "theory: level")
    assert received == [{"dim": 10}] and np.all(line.get_ydata() == 2.5)


def test_aggregate_counts_unconverged_runs():
    frame = pd.DataFrame({"width": [1, 1, 2, 2], "risk": [1.0, 3.0, 2.0, 2.0],
                          "converged": [1.0, 0.0, 1.0, 1.0]})
    table = aggregate(frame, "width", "risk", [])
    assert table["unconverged"].tolist() == [1, 0]
    assert table["mean"].tolist() == [2.0, 2.0]


def test_draw_points_draws_unconverged_dots_hollow():
    figure, axes = plt.subplots()
    draw_points(axes, [1, 2, 3], [1.0, 2.0, 3.0], [0.1, 0.1, 0.1], unconverged=[0, 2, 0],
                color="C0", label="fit")
    lines = [line for line in axes.get_lines() if line.get_marker() == "o"]
    faces = {tuple(line.get_xdata()): line.get_markerfacecolor() for line in lines}
    assert faces[(2.0,)] == "none"
    assert faces[(1.0, 3.0)] != "none"
    plt.close(figure)
