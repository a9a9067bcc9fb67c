"""Predictors: evaluation, shapes and validation."""

import numpy as np
import pytest
import torch

from lazylab.models import NeuralTangentModel, TwoLayer


def test_two_layer_prediction_is_the_formula():
    rng = np.random.default_rng(0)
    w, a, b, beta = (torch.as_tensor(rng.standard_normal(s)) for s in ((4, 3), 4, 4, 3))
    x = torch.as_tensor(rng.standard_normal((7, 3)))
    model = TwoLayer("tanh", w, a, biases=b, offset=0.5, linear=beta)
    expected = 0.5 + x @ beta + torch.tanh(x @ w.T + b) @ a
    assert torch.allclose(model.predict(x), expected, atol=1e-14)


def test_tangent_prediction_is_the_formula():
    rng = np.random.default_rng(1)
    w, a, h = (torch.as_tensor(rng.standard_normal(s)) for s in ((4, 3), (4, 3), 4))
    x = torch.as_tensor(rng.standard_normal((7, 3)))
    model = NeuralTangentModel("relu", w, a, head=h, offset=-1.0)
    pre = x @ w.T
    expected = -1.0 + ((pre > 0) * (x @ a.T)).sum(1) + torch.relu(pre) @ h
    assert torch.allclose(model.predict(x), expected, atol=1e-14)


def test_shape_errors_name_the_parameter():
    w = torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="head must have shape"):
        TwoLayer("relu", w, torch.zeros(3))
    with pytest.raises(ValueError, match="biases must have shape"):
        TwoLayer("relu", w, torch.zeros(4), biases=torch.zeros(5))
    with pytest.raises(ValueError, match="linear must have shape"):
        TwoLayer("relu", w, torch.zeros(4), linear=torch.zeros(4))
    with pytest.raises(ValueError, match="directions must have the shape"):
        NeuralTangentModel("relu", w, torch.zeros(3, 3))


def test_dtype_is_kept_and_device_moves_parameters():
    w = torch.ones(2, 3, dtype=torch.float32)
    model = TwoLayer("relu", w, torch.ones(2, dtype=torch.float32), device="cpu")
    assert model.weights.dtype == torch.float32 and model.head.dtype == torch.float32
    assert model.weights.device.type == "cpu"
    x = torch.ones(4, 3, dtype=torch.float64)            # input follows the parameters' dtype
    assert torch.allclose(model.predict(x), torch.full((4,), 6.0))
    assert TwoLayer("relu", [[1.0, 2.0]], [3.0]).weights.dtype == torch.float64
