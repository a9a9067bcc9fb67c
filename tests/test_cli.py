"""The lazylab command line, end to end on the test lab (tests/experiments/minilab.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.conftest import BASE_SPEC
from experiments.minilab import CATALOG
from lazylab import cli
from lazylab.cli import build_parser, main
from lazylab.experiments.reference import LISTING_KINDS, registry_listing

CONSOLE = Path(sys.executable).with_name("lazylab")


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(BASE_SPEC.replace("log_x = true", 'log_x = true\ntheory = ["linear.noise_floor"]'))
    return path


def _cli(capsys, *argv):
    code = main(list(map(str, argv)), catalog=CATALOG)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version_and_help_from_the_console_script():
    version = subprocess.run([CONSOLE, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip().startswith("lazylab 0.")
    usage = subprocess.run([CONSOLE, "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0
    for command in ("run", "status", "show", "export", "plot", "list"):
        assert command in usage.stdout


@pytest.mark.parametrize("command", ["run", "status", "show", "export", "plot", "list"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: lazylab {command}" in capsys.readouterr().out


def test_missing_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "x.toml"])
    assert exit_.value.code == 2 and "--csv" in capsys.readouterr().err


def test_export_takes_its_options_before_the_spec(spec, tmp_path, capsys):
    # the order of the usage line: `lazylab export [--csv [PATH]] SPEC`
    assert _cli(capsys, "run", spec, "--executor", "inprocess", "--quiet")[0] == 0
    code, out, err = _cli(capsys, "export", "--csv", spec)
    assert code == 0, err
    written = pd.read_csv(tmp_path / "study.csv")
    assert len(written) == 20 and out.strip() == str(tmp_path / "study.csv")
    code, out, err = _cli(capsys, "export", "--csv", tmp_path / "other.csv", spec)
    assert code == 0 and len(pd.read_csv(tmp_path / "other.csv")) == 20
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--csv"])
    assert exit_.value.code == 2 and "SPEC" in capsys.readouterr().err


def test_run_status_show_export_plot(spec, tmp_path, capsys):
    code, out, err = _cli(capsys, "status", spec)
    assert code == 0 and "20 runs: 0 done, 0 diverged, 0 failed, 20 pending" in out
    assert not (tmp_path / "study.sqlite").exists()  # status does not create the store

    code, out, err = _cli(capsys, "run", spec, "--executor", "inprocess", "--quiet")
    assert code == 0 and err == ""
    assert "20 runs: 16 done, 4 diverged, 0 failed, 0 pending" in out
    assert (tmp_path / "study.sqlite").exists()

    code, out, _ = _cli(capsys, "show", spec)
    table = out.splitlines()
    assert code == 0 and len(table) == 21
    assert table[0].split()[:2] == ["regime", "n_train"] and "risk_normalized" in table[0]

    code, out, _ = _cli(capsys, "export", spec, "--csv")
    frame = pd.read_csv(tmp_path / "study.csv")
    assert code == 0 and len(frame) == 20 and set(frame["status"]) == {"done", "diverged"}
    code, out, _ = _cli(capsys, "export", spec, "--parquet", tmp_path / "out.parquet")
    assert code == 0 and len(pd.read_parquet(tmp_path / "out.parquet")) == 20

    code, out, _ = _cli(capsys, "plot", spec, "--format", "png")
    assert code == 0 and out.split() == [str(tmp_path / "study.png")]
    assert (tmp_path / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_shows_progress_unless_quiet_and_resumes(spec, tmp_path, capsys):
    store = tmp_path / "elsewhere.sqlite"
    code, out, err = _cli(capsys, "run", spec, "--executor", "inprocess", "--store", store)
    assert code == 0 and "20/20" in err and "diverged=4" in err
    assert "gradient_descent" not in err  # step bars appear only for runs lasting seconds
    code, out, err = _cli(capsys, "run", spec, "--executor", "inprocess", "--store", store)
    assert code == 0 and err == "" and "16 done" in out
    assert not (tmp_path / "study.sqlite").exists()


def test_failed_runs_give_exit_1_and_retry(tmp_path, capsys):
    spec = tmp_path / "flaky.toml"
    spec.write_text(f'[task]\nname = "linear"\n[[regime]]\nname = "flaky"\n'
                    f'marker = "{tmp_path / "marker"}"\n[sweep]\nn_train = 10\n')
    code, out, _ = _cli(capsys, "run", spec, "--quiet", "--executor", "inprocess")
    assert code == 1 and "1 failed" in out
    code, out, _ = _cli(capsys, "run", spec, "--quiet", "--executor", "inprocess")
    assert code == 1 and "1 failed" in out
    code, out, _ = _cli(capsys, "run", spec, "--quiet", "--executor", "inprocess",
                        "--retry-failed")
    assert code == 0 and "1 done" in out


def test_plot_errors(spec, tmp_path, capsys):
    code, _, err = _cli(capsys, "plot", spec)
    assert code == 2 and err.startswith(f"lazylab: error: {spec}: plot.y: no finished runs")
    bare = tmp_path / "bare.toml"
    bare.write_text(BASE_SPEC.split("[plot]")[0])
    code, _, err = _cli(capsys, "plot", bare)
    assert code == 2 and err.strip() == (f"lazylab: error: {bare}: plot: no [plot] section; "
                                         "add one with x and y")
    assert not (tmp_path / "bare.sqlite").exists()


def test_list_prints_the_studies_without_importing_them(capsys):
    from lazylab.studies import STUDIES
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(STUDIES)
    for line, (name, study) in zip(lines, sorted(STUDIES.items())):
        assert line.split(None, 1)[1] == study.description.strip().splitlines()[0]
    code = ("import sys\nfrom lazylab.cli import main\nmain(['list'])\n"
            "print([m for m in ('torch', 'pandas', 'matplotlib', 'lazylab.studies') "
            "if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "[]", done


def test_reproduce_is_wired_to_the_studies(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["reproduce", "--help"])
    assert exit_.value.code == 0 and "usage: lazylab reproduce" in capsys.readouterr().out
    assert main(["reproduce", "no-such-study"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("lazylab: error: ") and "allowed:" in error[0]


def test_cli_scales_are_the_studies_scales():
    from lazylab.cli import SCALES
    from lazylab.studies import SCALES as STUDY_SCALES
    assert SCALES == STUDY_SCALES


def test_help_imports_no_heavy_stack():
    """`lazylab --help` parses without torch, pandas, matplotlib or the studies (start-up)."""
    code = ("import sys\nfrom lazylab.cli import build_parser\n"
            "build_parser().format_help()\n"
            "heavy = [m for m in ('torch', 'pandas', 'matplotlib', 'lazylab.studies', "
            "'lazylab.experiments') if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_list_kinds_cover_the_reference_listings():
    assert set(LISTING_KINDS) | {"studies"} == set(cli.LIST_KINDS)


@pytest.mark.parametrize("kind", ["tasks", "regimes", "activations", "metrics", "theory"])
def test_list_kind_prints_its_registry(kind, capsys):
    assert cli.main(["list", kind]) == 0
    assert capsys.readouterr().out == registry_listing(kind)


def test_plot_draws_the_theory_lines_of_the_example(tmp_path, monkeypatch, capsys):
    from lazylab import plots
    from lazylab.experiments import load_sweep
    from lazylab.experiments.sweep import make_task_builder
    from lazylab.theory import curves
    example = Path(__file__).resolve().parents[1] / "examples" / "quadratic-theory.toml"
    spec = tmp_path / example.name
    spec.write_text(example.read_text())
    assert main(["run", str(spec), "--executor", "inprocess", "--quiet"]) == 0
    saved = {}
    original = plots.save_figure

    def capture(figure, stem, formats):
        saved["lines"] = {line.get_label(): (line.get_xdata(), line.get_ydata())
                          for line in figure.axes[0].get_lines()}
        return original(figure, stem, formats)

    monkeypatch.setattr(plots, "save_figure", capture)
    assert main(["plot", str(spec), "--format", "png"]) == 0
    assert (tmp_path / "quadratic-theory.png").stat().st_size > 0
    task = make_task_builder(load_sweep(spec))({})          # the first seed's instance
    b = task.matrix.numpy()
    d, trace_alignment = b.shape[0], np.trace(b) ** 2 / (b.shape[0] * np.sum(b * b))
    for name in ("random_features_quadratic", "neural_tangent_quadratic", "network_quadratic"):
        x, y = saved["lines"][f"theory: curves.{name}"]
        assert x.min() == 5 and x.max() == 80
        np.testing.assert_allclose(y, getattr(curves, name)(x, task=task), rtol=1e-12)
    x, y = saved["lines"]["theory: curves.random_features_quadratic"]
    rho = x / d                                             # Corollary 1 with Γ = I/d, by hand
    np.testing.assert_allclose(y, 1 - rho * trace_alignment / (1 + rho), rtol=1e-10)
    x, y = saved["lines"]["theory: curves.network_quadratic"]
    squares = np.sort(np.linalg.eigvalsh(b))[::-1] ** 2    # Theorem 3: Σ_{i>N} λ_i² / ‖B‖_F²
    expected = [squares[int(n):].sum() / squares.sum() for n in np.floor(x)]
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-15)
    x, y = saved["lines"]["theory: curves.neural_tangent_quadratic"]
    assert y[x >= d].max() == 0 and y[0] > 0.5              # NT fits B exactly once N ≥ d


def test_a_reader_that_leaves_early_is_not_an_error(monkeypatch):
    """`lazylab list | head -1`: the pipe closes early; no traceback, exit 0."""
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["list"]) == 0
