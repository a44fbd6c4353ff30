"""Heaviside spikes with surrogate gradients, as in snnTorch.

Forward: ``H(x) = 1 if x > 0 else 0`` (strict, the contract's ``v > threshold``). Backward: the
derivative of a smooth stand-in. Each surrogate is a :class:`torch.autograd.Function` behind a
small factory named as in snnTorch: ``atan(alpha)`` and ``fast_sigmoid(slope)`` return a
function ``x -> spikes``. The returned function also carries ``.derivative(x)``, the same formula
as a plain function, which the scheduled simulator's hand-written backward pass uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "ATan",
    "FastSigmoid",
    "SpikeFn",
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


class ATan(torch.autograd.Function):
    """Heaviside forward; backward ``alpha / 2 / (1 + (pi / 2 * alpha * x)^2)`` (snnTorch)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * atan_derivative(x, ctx.alpha), None


class FastSigmoid(torch.autograd.Function):
    """Heaviside forward; backward ``1 / (slope * |x| + 1)^2`` (snnTorch's fast sigmoid)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * fast_sigmoid_derivative(x, ctx.slope), None


def atan(alpha: float = 2.0) -> SpikeFn:
    """Arc-tangent surrogate (snnTorch's default spike gradient)."""
    alpha = float(alpha)

    def inner(x: torch.Tensor) -> torch.Tensor:
        return ATan.apply(x, alpha)

    inner.surrogate = ("atan", alpha)  # type: ignore[attr-defined]
    inner.derivative = lambda x: atan_derivative(x, alpha)  # type: ignore[attr-defined]
    return inner


def fast_sigmoid(slope: float = 25.0) -> SpikeFn:
    """Fast-sigmoid surrogate (Zenke & Ganguli's SuperSpike)."""
    slope = float(slope)

    def inner(x: torch.Tensor) -> torch.Tensor:
        return FastSigmoid.apply(x, slope)

    inner.surrogate = ("fast_sigmoid", slope)  # type: ignore[attr-defined]
    inner.derivative = lambda x: fast_sigmoid_derivative(x, slope)  # type: ignore[attr-defined]
    return inner
