"""The generated reference of the spec format (lazylab.experiments.reference, docs/specs.md)."""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Literal

import pytest

from lazylab.activations import ACTIVATIONS
from lazylab.experiments import STANDARD_METRICS, load_sweep
from lazylab.experiments import reference
from lazylab.experiments.catalog import regime_parameters, task_parameters
from lazylab.experiments.reference import registry_listing, spec_reference
from lazylab.experiments.reference_notes import EXAMPLES, FIELD_FORMS, FIELD_NOTES, METRIC_NOTES
from lazylab.experiments.spec import parse_spec
from lazylab.models import REGIMES
from lazylab.tasks import TASKS

SPECS_MD = Path(__file__).resolve().parents[2] / "docs" / "specs.md"
REGENERATE = "PYTHONPATH=src python -m lazylab.experiments.reference docs/specs.md"


@pytest.fixture(scope="module")
def document() -> str:
    return spec_reference()


def section(document: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of the same or higher level."""
    level = heading.split(" ")[0]
    start = document.index(heading + "\n")
    rest = document[start + len(heading):]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", rest, re.MULTILINE)]
    return rest[: ends[0]] if ends else rest


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def test_docs_specs_md_is_up_to_date(document):
    committed = SPECS_MD.read_text(encoding="utf-8") if SPECS_MD.exists() else ""
    if committed != document:
        diff = difflib.unified_diff(committed.splitlines(), document.splitlines(),
                                    "docs/specs.md", "generated", lineterm="", n=1)
        pytest.fail(f"docs/specs.md is out of date with the code; regenerate it with "
                    f"`{REGENERATE}` (or `python scripts/make_docs.py`). First differences:\n"
                    + "\n".join(list(diff)[:30]), pytrace=False)


def test_main_writes_the_document(tmp_path, document):
    target = tmp_path / "specs.md"
    assert reference.main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == document


def _has_row(text: str, parameter) -> bool:
    """The parameter's row (name, type, default; '|' escaped in cells) is in ``text``."""
    cells = [c.replace("|", "\\|") for c in (reference.type_name(parameter.annotation),
                                              "required" if parameter.required
                                              else reference.toml_value(parameter.default))]
    return f"| `{parameter.name}` | {cells[0]} | {cells[1]} |" in text


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_parameter_has_a_row_with_its_type_and_default(document, name):
    text = section(document, f"### `{name}`")
    for parameter in task_parameters(TASKS[name]).values():
        assert _has_row(text, parameter), (name, parameter)


@pytest.mark.parametrize("name", sorted(REGIMES))
def test_every_regime_field_has_a_row_with_its_type_and_default(document, name):
    text = section(document, f"### `{name}`")
    for parameter in regime_parameters(REGIMES[name]).values():
        assert _has_row(text, parameter), (name, parameter)


def test_every_activation_metric_and_theory_curve_is_listed(document):
    activations = section(document, "## Activations")
    assert all(f"| {name} |" in activations for name in ACTIVATIONS)
    metrics = section(document, "## Metrics")
    for name in (*STANDARD_METRICS, "selected_NAME", "selection_at_edge"):
        assert f"| {name} |" in metrics
    curves = reference.theory_curves()
    assert "ghorbani_quadratic.random_features_risk" in {c[0] for c in curves}
    theory = section(document, "## Theory curves")
    assert all(f"| `{c[0]}` |" in theory for c in curves)


def test_the_selection_syntax_and_plot_options_are_documented(document):
    assert 'ridge = { grid = [...], select = "validation" }' in document
    assert 'ridge = "auto"' in document
    plot = section(document, "### [plot]")
    for name in ("x", "y", "series", "log_x", "log_y", "theory", "error_bars", "output",
                 "formats", "title"):
        assert f"| `{name}` |" in plot
    assert '| `formats` | list of ("png" \\| "pdf" \\| "svg") | ["png", "pdf"] |' in plot


def test_every_spec_field_and_standard_metric_has_a_meaning():
    keys = {f"{s}.{n}" if s else n for s, model in reference.SECTIONS
            for n in model.model_fields if n not in reference.FREE_FORM}
    assert keys == set(FIELD_NOTES), "add/remove meanings in reference_notes.FIELD_NOTES"
    assert set(STANDARD_METRICS) <= set(METRIC_NOTES)


def test_the_written_forms_of_spec_fields_parse():
    raw = {"task": {"name": "quadratic"}, "regime": [{"name": "kernel"}]}
    assert parse_spec(raw, "dir/stem.toml").name == "stem"
    assert parse_spec(raw, "a.toml").sweep.seeds == (0,)
    assert parse_spec(raw, "a.toml").sweep.n_train == ("population",)
    parsed = parse_spec({**raw, "sweep": {"seeds": 3, "n_train": 100}}, "a.toml")
    assert parsed.sweep.seeds == (0, 1, 2) and parsed.sweep.n_train == (100,)
    parsed = parse_spec({**raw, "sweep": {"seeds": [4], "n_train": [10, "population"]}}, "a.toml")
    assert parsed.sweep.seeds == (4,) and parsed.sweep.n_train == (10, "population")
    assert set(FIELD_FORMS) <= set(FIELD_NOTES)


def toy_task(*, rng, frobnication: float = 2.5, mode: Literal["a", "b"] = "a"):
    """Toy task for the reference test.

    Args:
        frobnication: how much to frobnicate. mode: which toy.
    """
    raise AssertionError("never built")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyRegime:
    """Toy regime for the reference test.

    Args:
        sharpness, dullness: two toy knobs.
    """

    sharpness: int = 3
    dullness: float | None = None


def test_entries_registered_at_run_time_appear(monkeypatch):
    monkeypatch.setitem(TASKS, "toy_task", toy_task)
    monkeypatch.setitem(REGIMES, "toy_regime", ToyRegime)
    monkeypatch.setattr(ToyRegime, "DIAGNOSTICS", ("toy_iterations",), raising=False)
    text = spec_reference()
    assert "| toy_iterations | diagnostic (toy_regime) |" in section(text, "## Metrics")
    toy = section(text, "### `toy_task`")
    assert "Toy task for the reference test." in toy
    assert "| `frobnication` | float | 2.5 | how much to frobnicate. |" in toy
    assert '| `mode` | "a" \\| "b" | "a" | which toy. |' in toy
    regime = section(text, "### `toy_regime`")
    assert "| `sharpness` | integer | 3 | two toy knobs. |" in regime
    assert "| `dullness` | float | unset | two toy knobs. |" in regime
    assert "frobnication=2.5" in registry_listing("tasks")
    assert "sharpness=3 dullness=unset" in registry_listing("regimes")


@pytest.mark.parametrize("kind,names", [
    ("tasks", TASKS), ("regimes", REGIMES), ("activations", ACTIVATIONS),
    ("metrics", STANDARD_METRICS), ("theory", ["ghorbani_mixture.network_risk_mixture"])])
def test_registry_listing_names_every_entry_one_per_line(kind, names):
    lines = registry_listing(kind).splitlines()
    starts = {line.split("  ")[0] for line in lines if line and not line.startswith(" ")}
    assert set(names) <= starts


def test_registry_listing_refuses_an_unknown_kind_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="kind='presets'.*tasks, regimes, activations, metrics, "
                                         "theory"):
        registry_listing("presets")


def test_argument_notes_reads_several_arguments_per_line_and_shared_entries():
    def builder(*, width, activation, weight_scale, head_scale):
        """Summary.

        Args:
            width: N ≥ 1. activation: σ (see ``ACTIVATIONS``).
            weight_scale, head_scale: s_w, s_a ≥ 0
                (initialization).
        Random stream: not an argument: no.
        """

    notes = reference.argument_notes(builder, {"width", "activation", "weight_scale",
                                               "head_scale"})
    assert notes == {"width": "N ≥ 1.", "activation": "σ (see `ACTIVATIONS`).",
                     "weight_scale": "s_w, s_a ≥ 0 (initialization).",
                     "head_scale": "s_w, s_a ≥ 0 (initialization)."}


def test_type_names_and_toml_values():
    assert reference.type_name(int | None) == "integer"
    assert reference.type_name(tuple[int | Literal["population"], ...]) == (
        'list of (integer | "population")')
    assert reference.toml_value((1e-3, True, "x", None)) == '[0.001, true, "x", unset]'
    assert reference.toml_value({"grid": [1, 2]}) == "{grid = [1, 2]}"
    assert reference.toml_value(object()) == "a object"


def test_every_regime_appears_in_an_example():
    used = {name for _, text in EXAMPLES
            for name in re.findall(r'^\[\[regime\]\]\nname = "(\w+)"', text, re.MULTILINE)}
    assert set(REGIMES) <= used, f"add an example using {sorted(set(REGIMES) - used)} to " \
                                 "lazylab/experiments/reference_notes.py"


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_each_example_of_docs_specs_md_validates(tmp_path, index):
    blocks = toml_blocks(SPECS_MD.read_text(encoding="utf-8"))
    assert len(blocks) == len(EXAMPLES)
    path = tmp_path / f"example-{index}.toml"
    path.write_text(blocks[index], encoding="utf-8")
    sweep = load_sweep(path)
    name = re.search(r'^name = "(.+)"$', blocks[index], re.MULTILINE).group(1)
    assert sweep.name == name
    regimes = re.findall(r'^\[\[regime\]\]\nname = "(\w+)"', blocks[index], re.MULTILINE)
    assert {run.regime for run in sweep.runs} == set(regimes)
    assert sweep.spec.plot is not None and sweep.spec.plot.y in sweep.metrics
