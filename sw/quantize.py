"""Quantization to the contract's integers, and quantization-aware training (QAT).

The mapping (``docs/semantics.md`` sections 2 and 3, ``docs/training.md``): layer ``l`` has a
float scale ``s_l``; its integer weights are ``clamp(round(w / s_l), -2^(wb-1), 2^(wb-1) - 1)``,
its integer threshold ``round(threshold_l / s_l)`` and its leak ``round(beta_l * 2^leak_shift)``.
A membrane of the integer model is then the float membrane divided by ``s_l`` (up to rounding,
the truncating leak and saturation at ``membrane_bits``).

The scale is fixed by the threshold: ``s_l = threshold_l / threshold_int``. It does not depend
on the weights, so it does not move during training; QAT trains through the rounding with a
straight-through estimator (the clamp passes no gradient outside the range), and float training
can bucket the momentum overshoot exactly as the deployed model will (``momentum_scale = 1/s``).

:class:`QuantScheduledSNN` is the network the trainer uses: a
:class:`~unlayered.sw.scheduled.ScheduledSNN` whose float run can use fake-quantized weights, the
rounded threshold and the rounded leak.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .events_torch import InputBatch
from .scheduled import RunOutput, ScheduledSNN, run_scheduled

__all__ = [
    "QuantScheduledSNN",
    "fake_quant",
    "integer_weights",
    "layer_scales",
    "quantized_beta",
    "quantized_threshold",
    "weight_range",
]


def weight_range(weight_bits: int) -> tuple[int, int]:
    """The signed range of ``weight_bits`` integers."""
    return -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1


def layer_scales(thresholds: list[float], threshold_int: int) -> list[float]:
    """``s_l = threshold_l / threshold_int`` for every layer."""
    return [float(t) / float(threshold_int) for t in thresholds]


def fake_quant(w: torch.Tensor, scale: float, weight_bits: int) -> torch.Tensor:
    """``s * clamp(round(w / s))`` in the forward pass; the gradient passes straight through
    inside the representable range and is zero outside it (the clamp)."""
    lo, hi = weight_range(weight_bits)
    wc = w.clamp(lo * scale, hi * scale)
    return wc + (torch.round(wc / scale) * scale - wc).detach()


def integer_weights(w: torch.Tensor | np.ndarray, scale: float, weight_bits: int) -> np.ndarray:
    """The deployed integer weights of a float weight matrix (int32)."""
    lo, hi = weight_range(weight_bits)
    w = torch.as_tensor(w).detach().to(torch.float64).cpu()
    return torch.round(w / scale).clamp(lo, hi).to(torch.int32).numpy()


def quantized_threshold(threshold: float, scale: float) -> int:
    return round(threshold / scale)


def quantized_beta(beta: float, leak_shift: int) -> int:
    """The integer ``leak`` of a float decay ``beta``."""
    return min(max(round(beta * (1 << leak_shift)), 0), 1 << leak_shift)


class QuantScheduledSNN(ScheduledSNN):
    """A :class:`ScheduledSNN` trained with (optional) quantization awareness.

    Parameters (besides :class:`ScheduledSNN`'s)
    ----------
    scales
        Per-layer scale ``s_l``.
    qat
        Run the float network on fake-quantized weights, rounded thresholds and rounded leaks.
    weight_bits, leak_shift
        The integer widths the fake quantization follows.

    ``forward(inputs)`` returns the per-step output counts only (what the loss needs; the form
    :class:`torch.nn.parallel.DistributedDataParallel` expects).
    """

    def __init__(
        self,
        n_inputs: int,
        sizes: list[int] | tuple[int, ...],
        *,
        scales: list[float],
        qat: bool = False,
        weight_bits: int = 8,
        **kwargs: Any,
    ):
        super().__init__(n_inputs, sizes, **kwargs)
        self.scales = [float(s) for s in scales]
        self.qat = bool(qat)
        self.weight_bits = int(weight_bits)

    def effective(self) -> tuple[list[torch.Tensor], list[float], list[float]]:
        """Weights, thresholds and decays the float run uses (quantized when ``qat``)."""
        weights = [fc.weight for fc in self.fc]
        if not self.qat:
            return weights, list(self.thresholds), list(self.betas)
        ls = self.config.leak_shift
        return (
            [fake_quant(w, s, self.weight_bits) for w, s in zip(weights, self.scales, strict=True)],
            [
                quantized_threshold(t, s) * s
                for t, s in zip(self.thresholds, self.scales, strict=True)
            ],
            [quantized_beta(b, ls) / (1 << ls) for b in self.betas],
        )

    def run(self, inputs: InputBatch | torch.Tensor, *, record: bool = False) -> RunOutput:
        if self.config.integer:
            return super().run(inputs, record=record)
        weights, thresholds, decay = self.effective()
        return run_scheduled(
            weights,
            thresholds,
            decay,
            self.resets,
            self._inputs(inputs),
            self.config,
            spike_fn=self.spike_grad,
            record=record,
            backward=self.backward,
            refractory_dropout=self.refractory_dropout if self.training else 0.0,
            generator=self.generator,
        )

    def forward(self, inputs: InputBatch | torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.run(inputs).counts
