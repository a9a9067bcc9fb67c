"""Batch sources for the trainers, and the dtype/device vocabulary they share.

* :func:`fresh_batches` — online SGD: every step a fresh sample of the task (drawn in blocks),
  so samples seen = steps × batch (Ghorbani et al. 2019, §2.3 and §4).
* :func:`minibatches` — a fixed data set, reshuffled every epoch; the returned
  :class:`Minibatches` carries the data set so that :func:`lazylab.solvers.training.train` can
  judge convergence on the full-batch training loss.
* :func:`on_device` — a host draw ``batch ↦ (x, y)`` served on a GPU from blocks moved in one
  copy (NT online SGD's float64 batches).
* :func:`resolve_dtype`, :func:`resolve_device` — float32/float64 and cpu/cuda, validated.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from lazylab import _checks as checks

__all__ = ["fresh_batches", "minibatches", "Minibatches", "on_device", "resolve_device",
           "resolve_dtype", "DTYPES", "DEVICE_BLOCK_ROWS"]


DTYPES = {"float32": torch.float32, "float64": torch.float64}
_CACHE_ENTRIES = 1 << 16
"""Numbers per block of the float32 online draws (256 KB: one batch of 100 at d = 450, which the
step reads while it is still in cache; blocks of 2 and 5 such batches measured 1.3–2 % and up to
2 % slower per step at N = 45 and 450)."""


# ----------------------------------------------------------------------------- validation

def resolve_dtype(dtype) -> torch.dtype:
    """torch.float32/float64 from a dtype or its name; ValueError otherwise."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def resolve_device(device) -> torch.device:
    """A torch device; ``cuda`` when CUDA is unavailable raises ValueError saying so."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available on this "
                         "machine (torch.cuda.is_available() is False); use device='cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return resolved


# ----------------------------------------------------------------------------- batch sources

def fresh_batches(task, batch_size: int, *, rng: np.random.Generator, device="cpu",
                  dtype=torch.float64, block_size: int = 10_000) -> Iterator[tuple]:
    """Online SGD data: an endless stream of fresh (x, y) batches of ``task``, each used once.

    Samples are drawn in blocks of ⌈block_size / batch_size⌉ batches (one draw per block, as
    the authors' code drew 30 000 Gaussians at a time), then converted to ``dtype`` on
    ``device``. The draws come from the task's ``batch_sampler(rng=, dtype=)`` when it has one
    (arguments checked once, no per-block :class:`~lazylab.tasks.Dataset` checks), else from
    ``task.sample``. float64: numpy's stream from ``rng`` (the numbers of ``task.sample``,
    independent of the block size when noise-free). float32 on a task with x ~ N(0, I_d): x is
    drawn directly in float32 by a torch generator seeded once from ``rng`` and y = f*(x)
    (+ noise·ξ), in blocks of at most ``_CACHE_ENTRIES`` numbers (whole batches) so that a batch
    is still in cache when trained on — about 3× cheaper than numpy's float64 draws, which
    dominate the step at small N; this stream depends on the block size. On a GPU those float32
    draws are made there, by a generator of the device, in blocks of ``block_size`` rows (a
    host draw and copy per step cost more than the step: measured 0.14× a plain torch loop on
    an H200); streams of different devices differ. Samples seen after t steps = t × batch_size.
    """
    batch_size = checks.positive_int(batch_size, "batch_size")
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    per_block = max(1, block_size // batch_size)
    draw, fast = _block_draw(task, rng, dtype, device)
    if fast and device.type == "cpu":
        per_block = max(1, min(per_block, _CACHE_ENTRIES // (batch_size * task.dim)))
    rows = per_block * batch_size
    starts = range(0, rows, batch_size)
    while True:
        x, y = draw(rows)
        if x.dtype != dtype or y.dtype != dtype or x.device != device:
            x, y = x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
        if per_block == 1:
            yield x, y
            continue
        for start in starts:  # slices: cheaper than split
            yield x[start:start + batch_size], y[start:start + batch_size]


DEVICE_BLOCK_ROWS = 10_000
"""Rows of the host draws that :func:`on_device` moves to a GPU in one copy (NT online SGD;
rounded down to whole batches)."""


def on_device(draw, device: torch.device, rows: int):
    """batch ↦ (x (batch, d), y (batch,)) on ``device``: ``draw``'s host batches fetched
    ⌊rows / batch⌋ batches at a time, moved in one copy each and handed out in slices (a copy
    per step would cost more than the step); a request for more than ``rows`` rows (the
    step-size calibration) is drawn and moved alone. For a noise-free task x and y are the
    numbers of the per-batch draws (row-major blocks); with noise the block's ξ follow its x,
    as one draw of the block would."""
    held, start = None, 0

    def next_batch(batch: int):
        nonlocal held, start
        if batch > rows:
            return tuple(t.to(device) for t in draw(batch))
        if held is None or start + batch > held[0].shape[0] or held[0].shape[0] % batch:
            held, start = tuple(t.to(device) for t in draw(rows // batch * batch)), 0
        start += batch
        return held[0][start - batch:start], held[1][start - batch:start]

    return next_batch


def _block_draw(task, rng: np.random.Generator, dtype: torch.dtype,
                device: torch.device) -> tuple[Callable, bool]:
    """(n ↦ (x (n, d), y (n,)), fast): the task's float32 sampler when it has one and the dtype
    is float32 (fast True; its draws made on ``device``), else its float64 sampler (numpy's
    stream; fast False), else ``task.sample`` (fast False), these two on the CPU."""
    sampler = getattr(task, "batch_sampler", None)
    if sampler is not None and dtype == torch.float32:
        draw = sampler(rng=rng, dtype=torch.float32, device=device)
        if draw is not None:
            return draw, True
    draw = None if sampler is None else sampler(rng=rng, dtype=torch.float64)
    if draw is not None:
        return draw, False

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        data = task.sample(n, rng=rng)
        return data.x, data.y

    return sample, False


class Minibatches:
    """Minibatches of a fixed data set, reshuffled every epoch: an iterator of (x, y) that also
    carries its data set, ``training_set`` = (x (n, d), y (n,)) on the device in the dtype, and
    ``epoch_steps`` = ⌈n / b⌉, for :func:`train`'s full-batch criterion. Built by
    :func:`minibatches` (arguments validated there); the permutations are drawn lazily, one per
    epoch, as the batches are consumed."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                 rng: np.random.Generator, epochs: int | None):
        self.training_set, self.batch_size = (x, y), batch_size
        self.epoch_steps = -(-int(x.shape[0]) // batch_size)
        self._batches = self._generate(rng, epochs)

    def _generate(self, rng: np.random.Generator, epochs: int | None) -> Iterator[tuple]:
        (x, y), n, epoch = self.training_set, int(self.training_set[0].shape[0]), 0
        while epochs is None or epoch < epochs:
            order = torch.from_numpy(rng.permutation(n)).to(x.device)
            for start in range(0, n, self.batch_size):
                index = order[start:start + self.batch_size]
                yield x[index], y[index]
            epoch += 1

    def __iter__(self) -> Minibatches:
        return self

    def __next__(self) -> tuple:
        return next(self._batches)


def minibatches(dataset, batch_size: int, *, rng: np.random.Generator, epochs: int | None = None,
                device="cpu", dtype=torch.float64) -> Minibatches:
    """Minibatches of a fixed data set, reshuffled every epoch (a permutation from ``rng``).

    Every epoch visits each sample once; the last batch of an epoch is smaller when the batch
    size does not divide n. ``epochs=None`` repeats forever. ``batch_size`` > n raises ValueError.
    The returned :class:`Minibatches` carries the data set (:func:`train` then judges
    convergence on the full-batch training loss, :mod:`lazylab.solvers.convergence`).
    """
    batch_size = checks.positive_int(batch_size, "batch_size")
    n = int(dataset.x.shape[0])
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the number of training samples n={n}")
    if epochs is not None:
        epochs = checks.positive_int(epochs, "epochs")
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    return Minibatches(dataset.x.to(device=device, dtype=dtype),
                       dataset.y.to(device=device, dtype=dtype), batch_size, rng, epochs)
