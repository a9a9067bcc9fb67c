"""The hand-written parts of the spec reference (``docs/specs.md``): meanings and examples.

:mod:`lazylab.experiments.reference` generates everything else from the code.
``tests/experiments/test_reference.py`` checks that every spec field and standard metric has a
meaning here, and validates every example through :func:`lazylab.experiments.load_sweep`. The
examples cover each regime family: lazy (random features, neural tangent, kernels), semi-random,
feature learning (one step, trained network).
"""

__all__ = ["FIELD_NOTES", "FIELD_FORMS", "METRIC_NOTES", "COMMON_NOTES", "SELECTION_SYNTAX", "EXAMPLES"]

FIELD_NOTES: dict[str, str] = {
    "name": "the sweep's name",
    "description": "free text describing the sweep",
    "task": "the `[task]` table",
    "regime": "one `[[regime]]` table per regime, at least one",
    "sweep": "the `[sweep]` table (optional)",
    "plot": "the `[plot]` table, read by `lazylab plot` (optional)",
    "task.name": "a task of the registry (see Tasks); every other key is one of its parameters",
    "regime.name": "a regime of the registry (see Regimes); every other key is one of its fields",
    "sweep.seeds": "a count K (seeds 0 … K−1) or a list of distinct non-negative integers",
    "sweep.n_train": "a positive integer, \"population\" (fit at n = ∞; tasks with moments), "
                     "or a list of those",
    "sweep.n_test": "test samples per run, drawn after any selection",
    "sweep.validation_size": "validation samples for selected fields (unset: `n_test`)",
    "sweep.max_memory_gb": "memory a run may use in the size check, in GB (`inf`: no check); "
                           "`--max-memory` and `LAZYLAB_MAX_MEMORY_GB` win over it (unset: "
                           "the available memory)",
    "sweep.metrics": "metrics to record (unset: the standard ones that apply, plus the "
                     "selection record)",
    "plot.x": "a run field or recorded metric, on the horizontal axis",
    "plot.y": "a recorded metric, on the vertical axis",
    "plot.series": "a run field: one line per value",
    "plot.log_x": "logarithmic horizontal axis",
    "plot.log_y": "logarithmic vertical axis",
    "plot.theory": "theory curves `module.function` of `lazylab.theory` (see Theory curves)",
    "plot.error_bars": "standard errors over seeds",
    "plot.output": "file stem of the figure, next to the spec (unset: the spec's stem)",
    "plot.formats": "figure files written",
    "plot.title": "figure title",
}
"""One line per spec field, keyed ``section.field`` (top-level fields by their name)."""

FIELD_FORMS: dict[str, tuple[str, str]] = {
    "name": ("string", "the file stem"),
    "sweep.seeds": ("integer | list of integer", "1 (seed 0)"),
    "sweep.n_train": ('integer | "population" | list of those', '"population"'),
}
"""(type, default) as written in a file, where the model's own differ (filled in or converted
by :mod:`lazylab.experiments.spec` before validation); a test parses each form."""

METRIC_NOTES: dict[str, str] = {
    "population_risk": "exact E(f(x) − y)² (tasks with population moments)",
    "test_risk": "empirical risk on `n_test` fresh samples",
    "train_risk": "empirical risk on the training set (finite `n_train`)",
    "risk_normalized": "`population_risk` (else `test_risk`) divided by Var y, the risk of the "
                       "best constant",
    "wall_time": "seconds spent fitting and measuring the run",
    "classification_error_percent": "misclassified test points (%) by the task's "
                                    "`classification` rule (digits: sign f(x) ≠ y)",
    "selected_NAME": "the chosen value of a selected field (numeric grid)",
    "selected_NAME_index": "the chosen position in the grid of a selected field (other grids)",
    "NAME_grid_scale": "the scale of a default grid (1 for a written grid)",
    "selection_risk": "validation or population risk at the chosen value",
    "selection_at_edge": "1 when a chosen value is the first or last of its grid: widen it",
    "selection_diverged": "grid values whose fit diverged",
    "rate_decays": "learning-rate halvings of the plateau schedule (schedule = \"plateau\")",
    "selection_extended": "values added past the grid's ends by `extend` (summed over fields)",
    "selection_unconverged": "grid values whose fit reported converged = 0 (chosen only if none converged)",
}
"""One line per standard and selection metric."""

COMMON_NOTES: dict[str, str] = {
    "dim": "input dimension d",
    "noise": "label noise standard deviation",
    "activation": "an activation name (see Activations)",
}
"""Descriptions of parameters whose docstring says nothing about them."""

SELECTION_SYNTAX = (
    ("ridge = 1e-3", "one value"),
    ("ridge = [1e-3, 1e-1]", "a grid: one run per value"),
    ("ridge = { grid = [...], select = \"validation\" }",
     "one run; every value fitted, the least risk on a validation split kept"),
    ("ridge = { grid = [...], select = \"population\" }",
     "one run; the least exact population risk kept (`n_train = \"population\"` only)"),
    ("ridge = { grid = [...] }", "rule by `n_train`: population at n = ∞, validation otherwise"),
    ("ridge = \"auto\" or { select = \"...\" }", "the field's default grid"),
    ("ridge = { grid = [...], extend = 2 }",
     "as above; a choice at an end of the grid tries up to 2 more values past it"),
)



EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Lazy regimes against the trained network at n = ∞", """\
name = "lazy-vs-network"
description = "RF, NT and a trained network on a quadratic target, exact at n = infinity"

[task]
name = "quadratic"
dim = 20
matrix = "exp-diagonal"          # B = diag(Exp(1)) / sqrt(d)

[[regime]]
name = "random_features"
activation = "relu"
weight_covariance = ["isotropic", "optimal"]   # a list is a grid

[[regime]]
name = "neural_tangent"
activation = "relu"

[[regime]]
name = "network"
activation = "quadratic"
training = "population"          # gradient descent on the exact risk
steps = 500

[sweep]
width = [5, 10, 20, 40]          # applies to every regime with a width
n_train = "population"
seeds = 3

[plot]
x = "width"
y = "risk_normalized"
series = "regime"
log_x = true
"""),
    ("Finite samples, kernels and model selection", """\
name = "ridge-selection"

[task]
name = "single_neuron"
dim = 10
noise = 0.1

[[regime]]
name = "random_features"
width = 200
ridge = { grid = [1e-6, 1e-4, 1e-2, 1.0], select = "validation" }

[[regime]]
name = "kernel"
kind = ["rf", "ntk"]
ridge = "auto"                   # the default ridge grid, chosen on the validation split

[sweep]
n_train = [100, 400]
n_test = 2000
validation_size = 1000
seeds = 3

[plot]
x = "n_train"
y = "test_risk"
series = "regime"
log_x = true
log_y = true
"""),
    ("Semi-random units", """\
name = "semi-random"

[task]
name = "gaussian_mixture"
dim = 10

[[regime]]
name = "semi_random"
degree = [0, 1]

[[regime]]
name = "deep_semi_random"
depth = 2
steps = 200

[sweep]
width = [20, 80]
n_train = [200, 800]
seeds = 3

[plot]
x = "n_train"
y = "risk_normalized"
series = "regime"
"""),
    ("Feature learning: one gradient step and a trained network", """\
name = "one-step"

[task]
name = "multi_index"
dim = 16
preset = "single-he2"

[[regime]]
name = "one_step"
width = 200

[[regime]]
name = "network"
width = 200
optimizer = "adam"
learning_rate = 1e-3
steps = 2000

[[regime]]
name = "neural_tangent"
width = 200
ridge = "auto"

[sweep]
n_train = [256, 1024]
n_test = 2000
seeds = 3
metrics = ["test_risk", "risk_normalized", "wall_time"]

[plot]
x = "n_train"
y = "risk_normalized"
series = "regime"
log_x = true
"""),
)
"""(title, TOML text) of each example."""
