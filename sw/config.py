"""The training configuration: one dataclass, resolved, validated and saved as JSON.

:class:`TrainConfig` holds everything a training run depends on (data, network, execution,
optimisation, quantization). The CLI builds it from its options (or a JSON file, ``--config``),
:func:`unlayered.sw.train.train` resolves the values left to ``None`` (``auto``) and writes the
resolved configuration into the output directory as ``config.json``; a checkpoint carries the
same plain dictionary, so a run can be reproduced from either.

Quantization (``docs/training.md``): each layer ``l`` has a scale ``s_l = threshold[l] /
threshold_int``: an integer weight is ``round(w / s_l)`` (clamped to ``weight_bits``), the integer
threshold ``round(threshold / s_l) = threshold_int`` and the leak ``round(beta * 2^leak_shift)``.
With a fixed ``threshold_int`` the scale does not move during training, so quantization-aware
training (``qat``) and the momentum buckets of float training see the same integers as the
deployed model.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["LOSSES", "SCHEDULERS", "TrainConfig", "load_config", "save_config"]

SCHEDULERS = ("sync", "fifo", "random", "momentum", "momentum_exact")
LOSSES = ("ce_per_step", "ce_cumulative", "ce_total")
SURROGATES = ("atan", "fast_sigmoid")


def _error(message: str) -> Exception:
    from unlayered.sim import UnlayeredError

    return UnlayeredError(message)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (see the module docstring).

    ``None`` means "resolved at run time": ``num_steps`` from the dataset, ``threshold_int`` from
    ``weight_bits`` (half the largest weight: a single weight can reach twice the threshold),
    ``momentum_shift`` so that the buckets span about one threshold, ``device`` to ``cuda`` when
    available, else ``cpu``, ``threads`` (CPU) to 1 for networks of at most 1024 sources (their
    many small tensor operations run about three times faster on one thread than on two) and to
    torch's default otherwise.
    """

    # data
    dataset: str = "digits"
    dataset_path: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    num_steps: int | None = None
    max_train_samples: int | None = None  # a subset, for quick runs
    max_test_samples: int | None = None
    val_fraction: float = 0.1  # held out of the training split for per-epoch validation
    # network
    hidden: tuple[int, ...] = (64,)
    threshold: float = 1.0
    beta: float = 0.9
    reset: str = "zero"
    surrogate: str = "atan"
    surrogate_param: float = 2.0  # atan alpha or fast_sigmoid slope
    init_gain: float = 1.0  # Xavier-uniform gain
    # execution during training (and, by default, of the exported artifact)
    scheduler: str = "momentum"
    group_size: int = 8
    prioritized_input: bool = True
    scheduler_seed: int = 1
    momentum_buckets: int = 8
    momentum_shift: int | None = None
    max_groups_per_step: int = 0
    decision: str = "argmax_spike_count"
    # optimisation
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.0
    loss: str = "ce_per_step"
    refractory_dropout: float = 0.0
    seed: int = 0
    device: str | None = None
    threads: int | None = None  # CPU threads of torch; auto: 1 for small networks (faster)
    # quantization
    qat: bool = False
    weight_bits: int = 8
    membrane_bits: int = 16
    leak_shift: int = 8
    threshold_int: int | None = None
    # output
    out: str = "out/train"

    # -----------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "dataset_options", dict(self.dataset_options))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`UnlayeredError` naming the first bad field."""

        def bad(name: str, message: str) -> Exception:
            return _error(f"config: field '{name}': {message} (got {getattr(self, name)!r})")

        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"expected one of {', '.join(SCHEDULERS)}")
        if self.loss not in LOSSES:
            raise bad("loss", f"expected one of {', '.join(LOSSES)}")
        if self.surrogate not in SURROGATES:
            raise bad("surrogate", f"expected one of {', '.join(SURROGATES)}")
        if self.reset not in ("zero", "subtract"):
            raise bad("reset", "expected 'zero' or 'subtract'")
        if self.decision not in ("argmax_spike_count", "first_to_threshold"):
            raise bad("decision", "expected 'argmax_spike_count' or 'first_to_threshold'")
        if any(h < 1 for h in self.hidden):
            raise bad("hidden", "layer sizes must be >= 1")
        for name in ("epochs", "group_size", "max_groups_per_step"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.batch_size < 1:
            raise bad("batch_size", "must be >= 1")
        if not self.threshold > 0:
            raise bad("threshold", "must be > 0")
        if not 0 <= self.beta <= 1:
            raise bad("beta", "must be in [0, 1]")
        if not 0 <= self.val_fraction < 1:
            raise bad("val_fraction", "must be in [0, 1)")
        if not 0 <= self.refractory_dropout < 1:
            raise bad("refractory_dropout", "must be in [0, 1)")
        if not 2 <= self.weight_bits <= 16:
            raise bad("weight_bits", "must be in [2, 16]")
        if not self.weight_bits <= self.membrane_bits <= 32:
            raise bad("membrane_bits", "must be in [weight_bits, 32]")
        if not 0 <= self.leak_shift <= 16:
            raise bad("leak_shift", "must be in [0, 16]")
        vmax = (1 << (self.membrane_bits - 1)) - 1
        if self.threshold_int is not None and not 1 <= self.threshold_int <= vmax - 1:
            raise bad("threshold_int", f"must be in [1, {vmax - 1}]")
        if self.momentum_shift is not None and not 0 <= self.momentum_shift <= 31:
            raise bad("momentum_shift", "must be in [0, 31]")
        if not 1 <= self.momentum_buckets <= 1024:
            raise bad("momentum_buckets", "must be in [1, 1024]")
        if not 0 <= self.scheduler_seed < 1 << 32:
            raise bad("scheduler_seed", "must be in [0, 2^32)")
        if self.threads is not None and self.threads < 1:
            raise bad("threads", "must be >= 1")
        if self.device not in (None, "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise bad("device", "expected cpu, cuda or cuda:N")

    # -----------------------------------------------------------------------------------------
    def resolved(self, num_steps: int | None = None) -> TrainConfig:
        """A copy with every ``None`` (auto) field given its value."""
        changes: dict[str, Any] = {}
        if self.num_steps is None and num_steps is not None:
            changes["num_steps"] = int(num_steps)
        thr_int = self.threshold_int
        if thr_int is None:
            vmax = (1 << (self.membrane_bits - 1)) - 1
            thr_int = min(max(1, ((1 << (self.weight_bits - 1)) - 1 + 1) // 2), vmax - 1)
            changes["threshold_int"] = thr_int
        if self.momentum_shift is None:
            span = max(1.0, thr_int / self.momentum_buckets)
            changes["momentum_shift"] = max(0, round(math.log2(span)))
        if self.device is None:
            import torch

            changes["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        return replace(self, **changes) if changes else self

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer sizes without the output layer (that comes from the dataset)."""
        return self.hidden

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise _error(f"{where}: field '{unknown[0]}': unknown field")
        try:
            return cls(**values)
        except TypeError as exc:
            raise _error(f"{where}: {exc}") from None


def save_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config.to_dict(), indent=1) + "\n")
    except OSError as exc:
        raise _error(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def load_config(path: str | os.PathLike) -> TrainConfig:
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except OSError as exc:
        raise _error(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise _error(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise _error(f"{path}: expected a JSON object")
    return TrainConfig.from_dict(values, where=str(path))
