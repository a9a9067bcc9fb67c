"""The file task: formats, splits, standardization, errors; usable from specs and estimators."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lazylab.experiments import load_sweep
from lazylab.tasks import TASKS, Dataset, FileTask

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _data(m=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 3.0, (m, d))
    return x, x @ np.arange(1.0, d + 1) + 0.1 * rng.standard_normal(m)


def _build(path, **options):
    return TASKS["file"](rng=np.random.default_rng(5), path=str(path), **options)


def _all(task: FileTask):
    return task.train, task.test


def test_npz_seeded_split_is_a_partition_of_the_file(tmp_path):
    x, y = _data()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    task = _build(tmp_path / "d.npz", test_fraction=0.25)
    train, test = _all(task)
    assert (train.n_samples, test.n_samples, task.dim) == (30, 10, 3)
    assert train.x.dtype == torch.float64 and not task.has_moments and task.bayes_risk is None
    rows = sorted(map(tuple, torch.cat([train.x, test.x]).numpy().round(12)))
    assert rows == sorted(map(tuple, x.round(12)))  # every example once, nothing invented
    again = _build(tmp_path / "d.npz", test_fraction=0.25)
    assert torch.equal(again.test.x, test.x)  # the split is a function of the rng
    assert task.null_risk == pytest.approx(float(np.var(train.y.numpy())))


def test_sample_gives_disjoint_train_then_test_blocks(tmp_path):
    x, y = _data()
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x[:7] + 100, y_test=y[:7])
    task = _build(tmp_path / "d.npz")
    first, second = task.sample(12, rng=None), task.sample(7, rng=None)
    assert torch.equal(first.x, task.train.x[:12])
    assert torch.equal(second.x, torch.as_tensor(x[:7] + 100))  # the file's own test split
    assert task.train.n_samples == 40  # test_fraction ignored with an explicit split
    with pytest.raises(ValueError, match="exceeds the 0 test examples"):
        task.sample(1)
    with pytest.raises(ValueError, match="split must be one of"):
        task.sample(1, split="validation")


def test_standardize_uses_training_statistics_only(tmp_path):
    x, y = _data(m=60)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    task = _build(tmp_path / "d.npz", standardize=True)
    train = task.train.x.numpy()
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train.std(axis=0), 1.0, rtol=1e-12)
    raw = _build(tmp_path / "d.npz")  # same rng: same split
    mean, spread = raw.train.x.numpy().mean(axis=0), raw.train.x.numpy().std(axis=0)
    np.testing.assert_allclose(task.test.x.numpy(), (raw.test.x.numpy() - mean) / spread,
                               rtol=1e-12)


def test_npy_pair_csv_and_parquet_read_the_same_data(tmp_path):
    x, y = _data(m=20, d=2)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "labels.npy", y)
    (tmp_path / "d.csv").write_text("a,target,b\n" + "".join(
        f"{float(r[0])!r},{float(t)!r},{float(r[1])!r}\n" for r, t in zip(x, y)))
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet
    parquet.write_table(pyarrow.table({"a": x[:, 0], "b": x[:, 1], "target": y}),
                        tmp_path / "d.parquet")
    tasks = [_build(tmp_path / "x.npy", label="labels"),
             _build(tmp_path / "d.csv", label="target"),
             _build(tmp_path / "d.parquet", label="target")]
    for task in tasks[1:]:
        assert torch.allclose(task.train.x, tasks[0].train.x, rtol=0, atol=1e-15)
        assert torch.allclose(task.test.y, tasks[0].test.y, rtol=0, atol=1e-15)


@pytest.mark.parametrize("write, options, message", [
    (None, {}, "does not exist"),
    (lambda p: p.with_suffix(".txt").write_text("1"), {"path_suffix": ".txt"},
     "unknown extension '.txt'"),
    (lambda p: np.savez(p, x=np.ones(4), y=np.ones(4)), {}, r"x must have shape \(n, d\)"),
    (lambda p: np.savez(p, x=np.ones((4, 2)), y=np.ones(3)), {}, r"y must have shape \(4,\)"),
    (lambda p: np.savez(p, x=np.full((4, 2), np.nan), y=np.ones(4)), {}, "8 NaN or infinite"),
    (lambda p: np.savez(p, x=np.ones((4, 2)), y=[1, 2, np.inf, 0]), {}, "y has 1 NaN"),
    (lambda p: np.savez(p, x=np.ones((4, 2))), {}, "needs arrays x and y"),
    (lambda p: np.savez(p, x=np.ones((4, 2)), y=np.ones(4), x_test=np.ones((2, 2))), {},
     "both x_test and y_test"),
    (lambda p: np.savez(p, x=np.ones((4, 2)), y=np.ones(4), x_test=np.ones((2, 3)),
                        y_test=np.ones(2)), {}, "x_test has 3 features"),
    (lambda p: np.savez(p, x=np.ones((4, 2)), y=np.ones(4)), {"test_fraction": 1.5},
     "test_fraction must be in"),
])
def test_bad_files_raise_value_errors(tmp_path, write, options, message):
    path = tmp_path / "d.npz"
    suffix = options.pop("path_suffix", None)
    if write is not None:
        write(path)
    if suffix:
        path = path.with_suffix(suffix)
    with pytest.raises(ValueError, match=message):
        _build(path, **options)


def test_csv_errors_name_the_problem(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match="must be a number"):
        _build(tmp_path / "d.csv", label="b")
    (tmp_path / "e.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match="no label column 'y'; columns: a, b"):
        _build(tmp_path / "e.csv")
    np.save(tmp_path / "x.npy", np.ones((3, 2)))
    with pytest.raises(ValueError, match="labels file .*y.npy does not exist"):
        _build(tmp_path / "x.npy")


def test_example_spec_validates_and_runs_on_a_file_written_here(tmp_path, monkeypatch):
    from lazylab.cli import main
    x, y = _data(m=200, d=4)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "features.npz", x=x, y=np.tanh(y / 5))
    spec = tmp_path / "file-task.toml"
    shutil.copy(EXAMPLES / "file-task.toml", spec)
    spec.write_text(spec.read_text().replace("seeds = 3", "seeds = 1"))
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep(spec)
    assert "population_risk" not in sweep.metrics and len(sweep.runs) == 9
    assert main(["run", str(spec), "--executor", "inprocess", "--quiet"]) == 0
    assert main(["status", str(spec)]) == 0


def test_estimators_take_the_file_data(tmp_path):
    from lazylab.sklearn import RandomFeaturesRegressor
    x, y = _data(m=80, d=3)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    task = _build(tmp_path / "d.npz", standardize=True)
    model = RandomFeaturesRegressor(width=50, ridge=1e-6, random_state=0)
    model.fit(task.train.x.numpy(), task.train.y.numpy())
    risk = float(np.mean((model.predict(task.test.x.numpy()) - task.test.y.numpy()) ** 2))
    assert risk < 0.05 * float(np.var(task.test.y.numpy()))  # a near-linear target is learnt


def test_dataset_rejects_non_finite_and_accepts_numpy():
    data = Dataset(np.ones((3, 2), dtype=np.float32), np.arange(3))
    assert data.x.dtype == torch.float64 and data.y.dtype == torch.float64
    with pytest.raises(ValueError, match="x has 1 NaN"):
        Dataset(np.array([[np.nan, 0.0]]), np.zeros(1))
    with pytest.raises(ValueError, match="y has 1 NaN or infinite"):
        Dataset(np.zeros((1, 2)), np.array([-np.inf]))
    with pytest.raises(TypeError, match="x must hold numbers"):
        Dataset(np.array([[object()]]), np.zeros(1))


def test_quadratic_takes_an_explicit_numpy_matrix():
    matrix = np.diag([1.0, 2.0, 3.0])
    task = TASKS["quadratic"](rng=np.random.default_rng(0), matrix=matrix, centered=False)
    # E y² = (Tr B)² + 2‖B‖_F² = 36 + 28, E y = Tr B = 6: Var y = 28
    assert task.dim == 3 and task.null_risk == pytest.approx(28.0)
    with pytest.raises(ValueError, match="symmetric"):
        TASKS["quadratic"](rng=np.random.default_rng(0), matrix=np.triu(np.ones((3, 3))))
