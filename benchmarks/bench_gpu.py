"""One prepared run of lazylab's CUDA paths on a lent GPU (issue 12 item 5): checks, then times.

A lent GPU is short (minutes a session), so everything that needs one is in this script, each
part guarded (a failure prints its traceback and the next part runs), rows printed as they come
and written to ``$OUT/gpu_rows.json`` (or ``--out FILE``) after every part:

(0) the machine: torch, the device, float64 / float32 matmul rates (8192³, median of 5);
(1) the CUDA tests of the suite (``pytest -k cuda tests``: every test named for CUDA);
(2) FALKON with the ReLU NTK at d = 450: n = 2·10⁵ with the default M = ⌈5√n⌉ and M = 10⁴,
    and n = 10⁶ with M = 5000, K_nM kept (memory budget 60 GB): time, CG iterations,
    converged, test MSE on 2000 fresh points, peak device memory;
(3) damian-onestep's paper-size fit: the 14-ridge FALKON path, n = 65,536, M = 16,384,
    d = 128, keeping K_nMᵀK_nM (on 2 CPU cores: 736 s, RESULTS.md stop 20);
(4) online SGD of the mean-field σ = u² network, float32, d = 450, batch 100,
    N ∈ {45, 450, 4500}: lazylab's fit against a plain torch loop of the same model on the
    device (hand-written gradients and autograd), steps per second and the ratio;
(5) ghorbani-fig1's paper-scale right panel NN: N = 225, d = 450, batch 100, η = 2·10⁻³ with
    the paper schedule, 20,000 steps (n/d ≈ 4444) timed and the study's 200,000-step run
    projected from it;
(6) the ReLU NTK Gram at n = 8000, d = 450 on the device, float64, against the CPU's on a
    1000 × 1000 corner (relative difference);
(7) NT online SGD (the paper's right-panel protocol: σ = relu, float64, batch 100, d = 450,
    N ∈ {45, 225}, 5000 steps): steps per second on the device;
(8) a study's paper scale with ``reproduce --device`` (default damian-onestep, whose OneStep
    runs stay on the CPU; ``--quick``: its smoke scale) into ``gpu-studies/`` under a time cap
    (``--study-cap``, default 420 s): resumable, so that folder can be carried from call to call
    (``carry``) with a store the CPU has part-filled;
(9) NT least squares at fig1's largest right-panel size (σ = u², N = 225, d = 450,
    n = 112,500 = 250 d, solver "cg", a path of 6 ridges): time, CG iterations, best risk
    (2 CPU cores: the study's 9 such fits took 789 s, the longest 227 s, stop 19);
(10) the paper's random-features least squares on the device: ReLU features, N = 4500,
    d = 450, n = 5·10⁵ samples drawn on the host and streamed in blocks (``RandomFeatures``,
    normal equations accumulated in float64 there): time, and its normalized population risk
    against the n = ∞ fit's of the same W.

Run: ``python benchmarks/bench_gpu.py [--device cuda] [--quick] [--part K ...]
[--panel-steps N]
[--study NAME] [--study-cap S]``; ``--quick``
shrinks every size (a CPU dry run: ``--device cpu --quick``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import _path_problem  # noqa: E402
from bench_training import _plain_loop  # noqa: E402
from common import print_rows, row  # noqa: E402

from lazylab.models.kernel import DualKernel  # noqa: E402
from lazylab.models.network import Network  # noqa: E402
from lazylab.models.neural_tangent import NeuralTangent  # noqa: E402
from lazylab.models.random_features import RandomFeatures  # noqa: E402
from lazylab.risk import population_risk  # noqa: E402
from lazylab.solvers import kernel_ridge  # noqa: E402
from lazylab.solvers.falkon import falkon_path  # noqa: E402
from lazylab.tasks import TASKS  # noqa: E402

BENCHMARK = "gpu"
ROOT = Path(__file__).resolve().parents[1]
FULL = {"gram": 8000, "falkon": [(200_000, None), (200_000, 10_000), (1_000_000, 5000)],
        "damian": (65_536, 16_384), "widths": (45, 450, 4500), "sgd_steps": 2000,
        "dim": 450, "panel_steps": 20_000, "panel_total": 200_000, "nt_widths": (45, 225),
        "nt_steps": 5000, "study": "damian-onestep", "study_scale": "paper",
        "study_dir": "gpu-studies", "study_cap": 420, "nt_samples": 112_500,
        "rf": (4500, 500_000)}
QUICK = {"gram": 500, "falkon": [(4000, None), (4000, 400)], "damian": (2048, 256),
         "widths": (9, 45), "sgd_steps": 50, "dim": 45, "panel_steps": 100, "panel_total": 1000,
         "nt_widths": (9,), "nt_steps": 100, "study": "damian-onestep",
         "study_scale": "smoke", "study_dir": "gpu-studies", "study_cap": 300,
         "nt_samples": 2000, "rf": (450, 60_000)}


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _seconds(function, device: str) -> tuple[float, object]:
    """Wall seconds of ``function()`` with the device drained before and after."""
    _sync(device)
    start = time.perf_counter()
    out = function()
    _sync(device)
    return time.perf_counter() - start, out


def _peak_gb(device: str) -> float:
    if torch.device(device).type != "cuda":
        return float("nan")
    return torch.cuda.max_memory_allocated() / 1e9


def _reset_peak(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def machine(device: str, sizes: dict) -> list[dict]:
    """Versions, the device's name and its float64 / float32 matmul rates (median of 5)."""
    name = torch.cuda.get_device_name() if torch.device(device).type == "cuda" else "cpu"
    rows = [row(BENCHMARK, "machine", "torch", float(torch.__version__.split(".")[1]), "",
                f"torch {torch.__version__}, python {sys.version.split()[0]}, {name}")]
    size = 1024 if sizes["dim"] < 100 else 8192
    for dtype in (torch.float64, torch.float32):
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        a @ b
        times = sorted(_seconds(lambda: a @ b, device)[0] for _ in range(5))
        rows.append(row(BENCHMARK, f"matmul {size}³ {dtype}".replace("torch.", ""), "rate",
                        2 * size**3 / times[2] / 1e12, "TFLOP/s", "median of 5"))
    return rows


def cuda_tests(device: str, sizes: dict) -> list[dict]:
    """The suite's CUDA tests (they skip without CUDA): passed / failed counts."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda",
               "tests"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])))
    print(done.stdout[-4000:], done.stderr[-2000:], flush=True)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
    return [row(BENCHMARK, "pytest -k cuda", "returncode", done.returncode, "",
                f"{summary} in {time.perf_counter() - start:.0f} s")]


def gram(device: str, sizes: dict) -> list[dict]:
    """The ReLU NTK Gram on the device, timed, against the CPU's on a corner."""
    n, dim = sizes["gram"], sizes["dim"]
    x = torch.randn(n, dim, dtype=torch.float64, device=device,
                    generator=torch.Generator(device).manual_seed(0))
    kernel = DualKernel("ntk")
    kernel(x[:64], x[:64])
    seconds, on_device = _seconds(lambda: kernel(x, x), device)
    corner = min(n, 1000)
    reference = kernel(x[:corner].cpu(), x[:corner].cpu())
    gap = float((on_device[:corner, :corner].cpu() - reference).norm() / reference.norm())
    case = f"ntk gram relu n={n} d={dim} float64 {device}"
    return [row(BENCHMARK, case, "time", seconds, "s", "symmetric call"),
            row(BENCHMARK, case, "relative_difference_to_cpu", gap, "",
                f"Frobenius, {corner}² corner")]


def _target(x: torch.Tensor) -> torch.Tensor:
    """relu(x₁) + (‖x‖²/d − 1)√d, bench_kernels' FALKON target."""
    return torch.relu(x[:, 0]) + (x.square().mean(dim=1) - 1.0) * math.sqrt(x.shape[1])


def falkon(device: str, sizes: dict) -> list[dict]:
    """FALKON fits at d = 450 on the device, K_nM kept (60 GB budget)."""
    rows, dim = [], sizes["dim"]
    for n, centers in sizes["falkon"]:
        generator = torch.Generator(device).manual_seed(n)
        x = torch.randn(n, dim, dtype=torch.float64, device=device, generator=generator)
        y = _target(x) + 0.1 * torch.randn(n, dtype=torch.float64, device=device,
                                           generator=generator)
        _reset_peak(device)
        seconds, fit = _seconds(lambda: kernel_ridge(
            DualKernel("ntk"), x, y, ridge=1e-4, method="falkon", n_centers=centers,
            rng=np.random.default_rng(1), tol=1e-8, max_iter=200, memory_budget=60e9,
            device=device), device)
        x_test = torch.randn(2000, dim, dtype=torch.float64, device=device, generator=generator)
        error = float(torch.mean((fit.predict(x_test) - _target(x_test)) ** 2))
        case = f"falkon ntk relu n={n} d={dim} M={fit.centers.shape[0]} {device}"
        rows += [row(BENCHMARK, case, "time", seconds, "s",
                     f"K_nM {fit.storage}, ridge 1e-4, tol 1e-8"),
                 row(BENCHMARK, case, "iterations", fit.iterations, "",
                     f"converged={fit.converged} residual={fit.residual:.2g}"),
                 row(BENCHMARK, case, "test_mse", error, "", "noiseless target, 2000 points"),
                 row(BENCHMARK, case, "peak_device_memory", _peak_gb(device), "GB", "")]
        x = y = fit = None  # free the device before the next size
    return rows


def damian(device: str, sizes: dict) -> list[dict]:
    """The 14-ridge path at damian-onestep's paper size, K_nMᵀK_nM kept, on the device."""
    n, m = sizes["damian"]
    x, y, x_test, kernel, ridges = _path_problem(n)
    x, y, x_test = x.to(device), y.to(device), x_test.to(device)
    _reset_peak(device)
    seconds, path = _seconds(lambda: falkon_path(
        kernel, x, y, ridges, n_centers=m, tol=1e-8, max_iter=100, memory_budget=0.0,
        factor_budget=16 * m * m, normal_matrix=True, rng=np.random.default_rng(3),
        device=device), device)
    errors = [float(torch.mean((s.predict(x_test) - torch.relu(x_test[:, 0])
                                - x_test[:, 1] * x_test[:, 2]) ** 2)) for s in path]
    case = f"falkon path ntk relu n={n} d=128 M={m} L=14 {device}"
    return [row(BENCHMARK, case, "time", seconds, "s",
                f"storage {path[0].storage}; 2 CPU cores: 736 s (stop 20)"),
            row(BENCHMARK, case, "converged", sum(s.converged for s in path), "of 14",
                f"iterations {[s.iterations for s in path]}"),
            row(BENCHMARK, case, "best_test_mse", min(errors), "",
                f"over the ridges; noiseless target, {x_test.shape[0]} points"),
            row(BENCHMARK, case, "peak_device_memory", _peak_gb(device), "GB", "")]


def _network(width: int, steps: int, device: str, **options) -> Network:
    return Network(width=width, activation="quadratic", parameterization="mean_field",
                   training="online", batch_size=100, steps=steps, dtype="float32",
                   device=device, **options)


def sgd(device: str, sizes: dict) -> list[dict]:
    """lazylab's online SGD against plain torch loops of the same model, on the device."""
    rows, dim, steps = [], sizes["dim"], sizes["sgd_steps"]
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim)
    diagonal = torch.diagonal(task.matrix).to(torch.float32)
    for width in sizes["widths"]:
        net = _network(width, steps, device, learning_rate=1e-4)
        _network(width, 5, device, learning_rate=1e-4).fit(task, rng=np.random.default_rng(1))
        _plain_loop(width, dim, 5, diagonal.to(device), 0.0, 1e-4, "hand-written", device)
        times = {"lazylab": [], "hand-written": [], "autograd": []}
        for _ in range(3):  # interleaved rounds, best of each
            times["lazylab"].append(_seconds(
                lambda: net.fit(task, rng=np.random.default_rng(2)), device)[0])
            for kind in ("hand-written", "autograd"):
                times[kind].append(_seconds(lambda: _plain_loop(
                    width, dim, steps, diagonal.to(device), 0.0, 1e-4, kind, device),
                    device)[0])
        best = {kind: min(values) for kind, values in times.items()}
        case = f"online sgd N={width} d={dim} batch=100 float32 {device}"
        rows += [row(BENCHMARK, case, "steps_per_second", steps / best["lazylab"], "1/s",
                     f"{steps} steps, best of 3, whole fit (init, diagnostics)"),
                 row(BENCHMARK, case, "ratio_to_plain", min(best["hand-written"],
                                                            best["autograd"]) / best["lazylab"],
                     "", f"best plain loop / lazylab (hand-written {best['hand-written']:.3f} s,"
                         f" autograd {best['autograd']:.3f} s)")]
    return rows


def panel(device: str, sizes: dict) -> list[dict]:
    """ghorbani-fig1's paper right panel NN run on the device (timed, then projected)."""
    dim, steps = sizes["dim"], sizes["panel_steps"]
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal")
    net = Network(width=dim // 2, activation="quadratic", train="first", head_init="ones",
                  weight_scale=float(np.sqrt(np.sqrt(dim) / (dim // 2))), training="online",
                  learning_rate=2e-3, momentum=0.0, schedule="paper", rate_scaling="none",
                  batch_size=100, steps=steps, dtype="float32", device=device)
    replace(net, steps=5).fit(task, rng=np.random.default_rng(0))  # warm-up
    seconds, model = _seconds(lambda: net.fit(task, rng=np.random.default_rng(1)), device)
    try:  # the exact population risk of the trained network (the engine takes CPU tensors)
        risk = float(population_risk(model, task))
    except Exception as error:  # noqa: BLE001 - report, keep the timing
        print("population risk failed:", repr(error), flush=True)
        risk = float("nan")
    case = f"ghorbani-fig1 paper panel NN N={dim // 2} d={dim} {device}"
    return [row(BENCHMARK, case, "time", seconds, "s", f"{steps} steps, batch 100"),
            row(BENCHMARK, case, "projected_full_run", seconds * sizes["panel_total"] / steps,
                "s", f"{sizes['panel_total']} steps (the study's largest n)"),
            row(BENCHMARK, case, "population_risk", risk, "",
                f"final train loss {model.diagnostics['final_train_loss']:.4g}")]


def nt_sgd(device: str, sizes: dict) -> list[dict]:
    """NT online SGD (σ = relu, float64, batch 100) on the device: steps per second."""
    rows, dim, steps = [], sizes["dim"], sizes["nt_steps"]
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal")
    for width in sizes["nt_widths"]:
        def fit(count):
            return NeuralTangent(width=width, solver="sgd", learning_rate=0.1, batch_size=100,
                                 steps=count, sgd_tol=1e-12, device=device).fit(
                task, rng=np.random.default_rng(1))
        fit(5)  # warm-up
        seconds, model = _seconds(lambda: fit(steps), device)
        case = f"nt online sgd relu N={width} d={dim} batch=100 float64 {device}"
        rows += [row(BENCHMARK, case, "steps_per_second", steps / seconds, "1/s",
                     f"{steps} steps in {seconds:.2f} s (calibration included)"),
                 row(BENCHMARK, case, "final_train_loss", model.diagnostics["final_train_loss"],
                     "", "")]
    return rows


def nt_least_squares(device: str, sizes: dict) -> list[dict]:
    """NT least squares at fig1's largest right-panel size on the device: a ridge path."""
    dim, width, n = sizes["dim"], sizes["dim"] // 2, sizes["nt_samples"]
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal")
    data = task.sample(n, rng=np.random.default_rng(1))
    ridges = [10.0 ** -k for k in range(1, 7)]
    regime = NeuralTangent(width=width, activation="quadratic", solver="cg", device=device)
    seconds, path = _seconds(lambda: regime.fit_path(data, ridges, rng=np.random.default_rng(2)),
                             device)
    risks = [float(population_risk(model, task)) / task.null_risk for model in path]
    case = f"nt least squares quadratic N={width} d={dim} n={n} L={len(ridges)} {device}"
    return [row(BENCHMARK, case, "time", seconds, "s",
                f"ridge path 1e-1 … 1e-6, CG iterations "
                f"{[int(m.diagnostics['cg_iterations']) for m in path]}"),
            row(BENCHMARK, case, "best_normalized_risk", min(risks), "",
                f"over the ridges; converged {sum(m.diagnostics['cg_converged'] == 1 for m in path)}"
                f" of {len(path)}")]


def study(device: str, sizes: dict) -> list[dict]:
    """``lazylab reproduce STUDY --device DEVICE`` at the paper scale (``--quick``: smoke) into
    ``sizes["study_dir"]``, stopped after ``sizes["study_cap"]`` seconds (the store keeps what
    finished: carry the folder back and forth to resume). Runs already in a carried store (the
    CPU-only OneStep runs of damian-onestep, say) are not run again."""
    name, scale = sizes["study"], sizes["study_scale"]
    command = ["timeout", str(sizes["study_cap"]), sys.executable, "-c",
               "import sys; from lazylab.cli import main; sys.exit(main())", "reproduce", name,
               "--scale", scale, "--device", device, "--output", sizes["study_dir"], "-q"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])))
    seconds = time.perf_counter() - start
    print(done.stdout[-3000:], done.stderr[-3000:], flush=True)
    report = next((line for line in done.stdout.splitlines() if "runs done" in line), "no report")
    case = f"reproduce {name} --scale {scale} --device {device}"
    return [row(BENCHMARK, case, "returncode", done.returncode, "",
                "124: stopped at the cap (resumable)"),
            row(BENCHMARK, case, "wall_time", seconds, "s", report.strip())]


def random_features(device: str, sizes: dict) -> list[dict]:
    """The 5·10⁵-sample RF least squares on the device (streamed), against its n = ∞ fit."""
    (width, n), dim = sizes["rf"], sizes["dim"]
    task = TASKS["quadratic"](rng=np.random.default_rng(0), dim=dim, matrix="exp-diagonal")
    data = task.sample(n, rng=np.random.default_rng(1))
    regime = RandomFeatures(width=width, activation="relu", ridge=1e-6, device=device)
    seconds, model = _seconds(lambda: regime.fit(data, rng=np.random.default_rng(2)), device)
    exact = RandomFeatures(width=width, activation="relu", ridge=1e-6).fit(
        task, rng=np.random.default_rng(2))
    case = f"random features relu N={width} d={dim} n={n} {device}"
    return [row(BENCHMARK, case, "time", seconds, "s",
                f"streamed {model.diagnostics['streamed']:.0f}, samples drawn beforehand"),
            row(BENCHMARK, case, "normalized_risk",
                float(population_risk(model, task)) / task.null_risk, "",
                f"n = ∞ fit of the same W: {float(population_risk(exact, task)) / task.null_risk:.6f}")]


PARTS = (machine, cuda_tests, falkon, damian, sgd, panel, gram, nt_sgd, study,
         nt_least_squares, random_features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", type=int, action="append", help="run only these parts")
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."),
                                                      "gpu_rows.json"))
    parser.add_argument("--panel-steps", type=int, help="steps of part 5's run (default "
                        "20,000; 200,000 is the study's whole largest run)")
    parser.add_argument("--study", help="part 8's study (default damian-onestep)")
    parser.add_argument("--study-cap", type=int, help="part 8's time cap in seconds")
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    for key, value in (("panel_steps", args.panel_steps), ("study", args.study),
                       ("study_cap", args.study_cap)):
        if value:
            sizes[key] = value
    rows = []
    for index, part in enumerate(PARTS):
        if args.part and index not in args.part:
            continue
        start = time.perf_counter()
        print(f"== part {index}: {part.__name__}", flush=True)
        try:
            new = part(args.device, sizes)
        except Exception:  # noqa: BLE001 - one failing part must not stop the others
            traceback.print_exc()
            new = [row(BENCHMARK, part.__name__, "failed", 1, "", "traceback above")]
        new.append(row(BENCHMARK, part.__name__, "part_seconds", time.perf_counter() - start,
                       "s", ""))
        print_rows([new], width=52)
        rows += new
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
