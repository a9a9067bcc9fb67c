"""Figures from sweep results: mean ± standard error over seeds, theory curves, N = d marker.

:func:`plot_results` draws one series per distinct value of the plot's ``series`` field (and of
any other run field that varies, except x and the seed), the mean over seeds as dots joined by
lines, error bars of one standard error (sample standard deviation / √seeds). Runs without an x
value (a kernel in a width sweep, n = ∞ in a sample-size sweep) are drawn as horizontal dashed
lines. Theory curves follow the protocol of :func:`lazylab.experiments.resolve_theory`,
``f(x_values, **task_params) -> y_values``, evaluated on a fine grid spanning the data, once per
task configuration. Headless: the Agg backend is used and nothing is shown.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["aggregate", "draw_points", "plot_results", "save_figure", "set_axis_scale", "axis_label",
           "AXIS_LABELS", "plt"]

AXIS_LABELS = {
    "width": "width N (hidden units)",
    "n_train": "training samples n",
    "dim": "input dimension d",
    "risk_normalized": "normalized risk R / R₀\n(R₀: risk of the best constant predictor)",
    "population_risk": "population risk E(f(x) − y)²",
    "test_risk": "test risk (mean squared error on the test set)",
    "train_risk": "training risk (mean squared error on the training set)",
    "wall_time": "wall time per run (s)",
    "ridge": "ridge penalty λ",
    "head_norm": "head norm ‖a‖",
}
_NON_IDENTITY = {"run_id", "status", "error", "lazylab_version", "git_commit", "host",
                 "started_at", "finished_at", "seed"}


def axis_label(name: str) -> str:
    """A readable axis label for a field or metric (the name itself when unknown)."""
    return AXIS_LABELS.get(name, name.replace("_", " "))


def aggregate(frame: pd.DataFrame, x: str, y: str, groups: Sequence[str]) -> pd.DataFrame:
    """Mean, standard error and count of ``y`` per group and x (x may be missing: NaN).

    When ``frame`` has a ``converged`` column (1/0, NaN for fits that are not iterative), the
    table also has ``unconverged``: how many of the averaged runs did not meet their tolerance.
    """
    keys = [*groups, x]
    extra = ["converged"] if "converged" in frame.columns else []
    data = frame[keys + [y] + extra].copy()
    data = data[np.isfinite(pd.to_numeric(data[y], errors="coerce"))]
    grouped = data.groupby(keys, dropna=False, sort=True)
    table = grouped[y].agg(mean="mean", std="std", count="count").reset_index()
    table["sem"] = (table["std"] / np.sqrt(table["count"])).fillna(0.0)
    if extra:
        failed = (pd.to_numeric(data["converged"], errors="coerce") == 0).astype(int)
        table["unconverged"] = failed.groupby([data[k] for k in keys], dropna=False,
                                              sort=True).sum().to_numpy()
    return table.drop(columns="std")


def draw_points(axes: Any, x: Sequence[float], mean: Sequence[float], sem: Sequence[float],
                *, unconverged: Sequence[int] | None = None, **style: Any) -> None:
    """Dots ± standard errors; a dot averaging any unconverged fit is drawn hollow.

    Args:
        axes: a matplotlib Axes; x, mean, sem: equal-length sequences;
        unconverged: per dot, how many of its runs did not converge (None: all converged);
        style: ``errorbar`` keywords (color, marker, label, ...); the label goes to the filled
            dots, or to the hollow ones when every dot is hollow.
    """
    x, mean, sem = (np.asarray(v, dtype=float) for v in (x, mean, sem))
    hollow = (np.zeros(x.shape, bool) if unconverged is None
              else np.asarray(unconverged, dtype=float) > 0)
    style = {"marker": "o", "markersize": 4, "capsize": 3, "linewidth": 1.2, **style}
    label = style.pop("label", None)
    if (~hollow).any():
        axes.errorbar(x[~hollow], mean[~hollow], yerr=sem[~hollow], label=label, **style)
        label = None
    if hollow.any():
        hollow_style = {**style, "linestyle": "none", "markerfacecolor": "none"}
        axes.errorbar(x[hollow], mean[hollow], yerr=sem[hollow], label=label, **hollow_style)


def _series_columns(frame: pd.DataFrame, fields: Sequence[str], x: str, series: str) -> list[str]:
    varying = [c for c in fields if c in frame and c not in _NON_IDENTITY and c != x
               and c != series and frame.groupby(series, dropna=False)[c].nunique().max() > 1]
    return [series, *varying]


def _format(value: Any) -> str:
    """A legend value: integers without '.0', ∞ for the population, '–' for missing."""
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if math.isnan(value):
            return "–"
        if value.is_integer():
            return str(int(value))
        return f"{value:g}"
    return str(value)


def _label(keys: tuple, columns: Sequence[str]) -> str:
    rest = [f"{c}={_format(v)}" for c, v in zip(columns[1:], keys[1:])
            if not (isinstance(v, float) and math.isnan(v))]
    head = _format(keys[0])
    return f"{head} ({', '.join(rest)})" if rest else head


def _draw_series(axes: Any, table: pd.DataFrame, x: str, label: str, error_bars: bool,
                 color: Any) -> None:
    finite = table[np.isfinite(table[x].astype(float))] if _numeric(table[x]) else table.dropna()
    level = table[~table.index.isin(finite.index)]
    if not finite.empty:
        draw_points(axes, finite[x], finite["mean"],
                    finite["sem"] if error_bars else np.zeros(len(finite)),
                    unconverged=finite.get("unconverged"), label=label, color=color)
    for _, row in level.iterrows():
        suffix = " (n = ∞)" if x == "n_train" else f" (no {x})"
        axes.axhline(row["mean"], linestyle="--", linewidth=1.0, color=color,
                     label=label + suffix)


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column)


def _theory_params(function: Callable[..., Any], params: dict[str, Any],
                   task_builder: Callable[[dict[str, Any]], Any] | None) -> dict[str, Any]:
    """Keyword arguments of a theory call: the task parameters it names, and ``task``."""
    signature = inspect.signature(function)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        arguments = dict(params)
    else:
        arguments = {k: v for k, v in params.items() if k in signature.parameters}
    if "task" in signature.parameters and task_builder is not None:
        arguments["task"] = task_builder(params)
    return arguments


def _draw_theory(axes: Any, frame: pd.DataFrame, x: str, theory: dict[str, Callable],
                 task_fields: Sequence[str], log_x: bool,
                 task_builder: Callable[[dict[str, Any]], Any] | None) -> None:
    values = pd.to_numeric(frame[x], errors="coerce")
    values = values[np.isfinite(values)]
    if values.empty or not theory:
        return
    low, high = float(values.min()), float(values.max())
    grid = np.geomspace(low, high, 200) if log_x and low > 0 else np.linspace(low, high, 200)
    fields = [f for f in task_fields if f in frame]
    configurations = frame[fields].drop_duplicates().to_dict("records") if fields else [{}]
    configurations = [{k.removeprefix("task."): v for k, v in c.items()} for c in configurations]
    styles = [":", (0, (6, 2)), "-.", (0, (1, 3)), (0, (8, 2, 1, 2))]
    for index, (name, function) in enumerate(theory.items()):
        for params in configurations:
            arguments = _theory_params(function, params, task_builder)
            curve = np.asarray(function(grid, **arguments), dtype=float)
            extra = ", ".join(f"{k}={_format(v)}" for k, v in params.items()
                              if frame[f"task.{k}" if f"task.{k}" in frame else k].nunique() > 1)
            axes.plot(grid, curve, color="black", linewidth=1.0,
                      linestyle=styles[index % len(styles)],
                      label=f"theory: {name}" + (f" ({extra})" if extra else ""))


def _mark_dimension(axes: Any, frame: pd.DataFrame, x: str) -> None:
    if x not in ("width", "n_train") or "dim" not in frame:
        return
    dims = pd.to_numeric(frame["dim"], errors="coerce").dropna().unique()
    if len(dims) == 1:
        symbol = "N" if x == "width" else "n"
        axes.axvline(float(dims[0]), color="grey", linewidth=0.8, linestyle="-.",
                     label=f"{symbol} = d = {int(dims[0])}")


def set_axis_scale(axis: Any, set_scale: Callable[[str], None], log: bool,
           values: Sequence[float] = ()) -> None:
    """Linear or log scale; log ticks as plain numbers (0.1, 2, 500). A log axis with at most
    eight swept values gets exactly those as ticks; otherwise minor ticks are labelled when the
    axis spans less than two decades (only 2, 3 and 5 × 10^k beyond one decade)."""
    set_scale("log" if log else "linear")
    if not log:
        return
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    if 1 < len(values) <= 8:
        axis.set_major_locator(matplotlib.ticker.FixedLocator(sorted(values)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        return
    low, high = sorted(axis.get_view_interval())
    decades = math.log10(high / low) if low > 0 else math.inf
    keep = {1, 2, 3, 4, 5, 6, 7, 8, 9} if decades < 1 else {2, 3, 5} if decades < 2 else set()

    def minor(value: float, _: Any) -> str:
        mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9)) if value > 0 else 0
        return f"{value:g}" if mantissa in keep else ""

    axis.set_major_formatter(plain)
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


def plot_results(frame: pd.DataFrame, *, x: str, y: str, series: str, fields: Sequence[str],
                 task_fields: Sequence[str] = (), log_x: bool = False, log_y: bool = False,
                 error_bars: bool = True, theory: dict[str, Callable] | None = None,
                 task_builder: Callable[[dict[str, Any]], Any] | None = None,
                 title: str | None = None) -> Any:
    """Draw ``y`` against ``x`` from a results frame; return the matplotlib Figure.

    Args:
        frame: one row per run (``lazylab.experiments.results_frame``), status done.
        x, y, series: column names (run fields or metrics).
        fields: the run-identity columns (used to split series and label them).
        task_fields: task parameter columns passed to theory curves (a ``task.`` prefix is
            dropped from the keyword).
        theory: label → callable following the theory protocol.
        task_builder: task parameters → task instance, for theory callables taking ``task``.
    """
    if frame.empty:
        raise ValueError("no finished runs to plot; run the sweep first")
    columns = _series_columns(frame, fields, x, series)
    table = aggregate(frame, x, y, columns)
    figure, axes = plt.subplots(figsize=(8.6, 4.6), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (keys, group) in enumerate(table.groupby(columns, sort=True, dropna=False)):
        keys = keys if isinstance(keys, tuple) else (keys,)
        _draw_series(axes, group.reset_index(drop=True), x, _label(keys, columns), error_bars,
                     colors[index % len(colors)])
    _draw_theory(axes, frame, x, theory or {}, task_fields, log_x, task_builder)
    _mark_dimension(axes, frame, x)
    swept = pd.to_numeric(frame[x], errors="coerce")
    swept = sorted(set(swept[np.isfinite(swept) & (swept > 0)].tolist()))
    set_axis_scale(axes.xaxis, axes.set_xscale, log_x, swept)
    set_axis_scale(axes.yaxis, axes.set_yscale, log_y)
    axes.set_xlabel(axis_label(x))
    axes.set_ylabel(axis_label(y))
    seeds = int(frame["seed"].nunique()) if "seed" in frame else 1
    axes.set_title(title or f"{axis_label(y).splitlines()[0].split(' (')[0]} — mean ± s.e. "
                   f"over {seeds} seed"
                   + ("s" if seeds != 1 else ""), fontsize=10)
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def save_figure(figure: Any, stem: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Save ``figure`` as ``stem.png``, ``stem.pdf``… and close it; return the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        figure.savefig(path, dpi=150)
        paths.append(path)
    plt.close(figure)
    return paths
