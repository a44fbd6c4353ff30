"""Heaviside spikes with surrogate gradients, as in snnTorch.

Forward: ``H(x) = 1 if x > 0 else 0`` (strict, the contract's ``v > threshold``). Backward: the
derivative of a smooth stand-in. Every surrogate is the one autograd function
:class:`SurrogateSpike`, given its derivative, behind a small factory named as in snnTorch:
``atan(alpha)`` and ``fast_sigmoid(slope)`` return a function ``x -> spikes``. The returned
function also carries ``.derivative(x)``, the same formula, which the scheduled simulator's
hand-written backward pass uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "SpikeFn",
    "SurrogateSpike",
    "atan",
    "atan_derivative",
    "fast_sigmoid",
    "fast_sigmoid_derivative",
    "heaviside",
]

SpikeFn = Callable[[torch.Tensor], torch.Tensor]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """The forward of every surrogate: ``1`` where ``x > 0``, else ``0``, in ``x``'s dtype."""
    return (x > 0).to(x.dtype)


def atan_derivative(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """The arc-tangent surrogate's derivative ``alpha / 2 / (1 + (pi / 2 * alpha * x)^2)``."""
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


def fast_sigmoid_derivative(x: torch.Tensor, slope: float) -> torch.Tensor:
    """The fast sigmoid's derivative ``1 / (slope * |x| + 1)^2``."""
    return 1 / (slope * x.abs() + 1) ** 2


class SurrogateSpike(torch.autograd.Function):
    """Heaviside forward; backward ``grad * derivative(x)`` for the surrogate's derivative."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, derivative: Callable[[torch.Tensor], torch.Tensor]):
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.derivative(x), None


def _spike_fn(name: str, parameter: float, derivative) -> SpikeFn:
    """``x -> spikes`` with the surrogate gradient ``derivative(x, parameter)``."""

    def derivative_at(x: torch.Tensor) -> torch.Tensor:
        return derivative(x, parameter)

    def inner(x: torch.Tensor) -> torch.Tensor:
        return SurrogateSpike.apply(x, derivative_at)

    inner.surrogate = (name, parameter)  # type: ignore[attr-defined]
    inner.derivative = derivative_at  # type: ignore[attr-defined]
    return inner


def atan(alpha: float = 2.0) -> SpikeFn:
    """Arc-tangent surrogate (snnTorch's default spike gradient)."""
    return _spike_fn("atan", float(alpha), atan_derivative)


def fast_sigmoid(slope: float = 25.0) -> SpikeFn:
    """Fast-sigmoid surrogate (Zenke & Ganguli's SuperSpike)."""
    return _spike_fn("fast_sigmoid", float(slope), fast_sigmoid_derivative)
