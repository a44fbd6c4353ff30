"""Export a training checkpoint as the deployed model artifact (``unlayered export``).

The float network is quantized as :mod:`unlayered.sw.quantize` says (per-layer scale ``s``:
integer weights ``round(w / s)``, threshold ``round(threshold / s)``, leak ``round(beta *
2^leak_shift)``), and written with :func:`unlayered.sim.save_model`. The artifact carries the
input encoding (the dataset's, plus what reloads it: name, steps, seed) and the quantization
scales, so ``unlayered evaluate`` can find the same data again.

Before writing, the model runs in the reference simulator on the validation samples the training
held out (or the first test samples): an export in which a layer never fires is refused with an
:class:`~unlayered.sim.UnlayeredError` (a silent layer means the quantized network lost its
signal: weights clamped or rounded to nothing, a threshold out of reach), unless
``allow_silent``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unlayered.sim import LayerSpec, Model, SchedulerSpec, UnlayeredError, save_model, simulate

from .quantize import integer_weights, quantized_beta, quantized_threshold

__all__ = ["ExportResult", "check_events", "export", "model_from_checkpoint"]


@dataclass
class ExportResult:
    model: Model
    path: Path | None
    spikes_per_layer: list[float]  # mean per sample on the check samples
    check_samples: int


def model_from_checkpoint(
    ckpt: dict[str, Any],
    *,
    scheduler: str | None = None,
    group_size: int | None = None,
    source: str = "",
) -> Model:
    """The integer :class:`Model` of a checkpoint (:func:`unlayered.sw.train.load_checkpoint`).

    ``scheduler`` and ``group_size`` override the training's execution (a model trained with
    the float-only ``momentum_exact`` order is exported with ``momentum``).
    """
    from .train import network_from_checkpoint

    net, cfg = network_from_checkpoint(ckpt)
    name = scheduler or cfg.scheduler
    if name == "momentum_exact":
        name = "momentum"
    weights = [
        integer_weights(fc.weight, s, cfg.weight_bits)
        for fc, s in zip(net.fc, net.scales, strict=True)
    ]
    layers = [
        LayerSpec(
            size=size,
            threshold=quantized_threshold(thr, s),
            leak=quantized_beta(beta, cfg.leak_shift),
            reset=reset,
        )
        for size, thr, beta, reset, s in zip(
            net.sizes, net.thresholds, net.betas, net.resets, net.scales, strict=True
        )
    ]
    data = ckpt.get("dataset", {})
    encoding = dict(data.get("encoding", {}))
    encoding.setdefault("dataset", data.get("name"))
    encoding.setdefault("num_steps", data.get("num_steps"))
    encoding.setdefault("n_classes", data.get("n_classes"))
    encoding.setdefault("seed", data.get("seed"))
    if data.get("options"):
        encoding.setdefault("dataset_options", data.get("options"))
    encoding = {k: v for k, v in encoding.items() if v is not None}
    history = ckpt.get("history") or [{}]
    model = Model(
        n_inputs=net.n_inputs,
        layers=tuple(layers),
        weights=tuple(weights),
        weight_bits=cfg.weight_bits,
        membrane_bits=cfg.membrane_bits,
        leak_shift=cfg.leak_shift,
        scheduler=SchedulerSpec(
            name=name,
            group_size=cfg.group_size if group_size is None else int(group_size),
            prioritized_input=cfg.prioritized_input,
            seed=cfg.scheduler_seed,
            momentum_buckets=cfg.momentum_buckets,
            momentum_shift=cfg.momentum_shift,
            max_groups_per_step=cfg.max_groups_per_step,
        ),
        decision=cfg.decision,
        input_encoding=encoding,
        quantization={
            "scheme": "per-layer scale s = threshold / threshold_int; w = round(w_float / s)",
            "scales": list(net.scales),
            "threshold_int": cfg.threshold_int,
            "float_thresholds": list(net.thresholds),
            "float_betas": list(net.betas),
            "qat": cfg.qat,
        },
        metadata={
            "source": source,
            "trained_with": {
                "scheduler": cfg.scheduler,
                "group_size": cfg.group_size,
                "loss": cfg.loss,
                "epochs": cfg.epochs,
                "qat": cfg.qat,
                "seed": cfg.seed,
            },
            "val_accuracy_float": history[-1].get("val_accuracy"),
        },
    )
    model.validate(where=source or "export")
    return model


def check_events(ckpt: dict[str, Any], dataset=None, max_samples: int = 256):
    """The samples the silent-layer check runs: the held-out validation samples of training
    (by sample id), else the first test samples."""
    from .train import open_dataset

    data = ckpt.get("dataset", {})
    if dataset is None:
        dataset = open_dataset(
            data["name"],
            num_steps=data.get("num_steps"),
            seed=data.get("seed", 0),
            path=data.get("path"),
            options=data.get("options"),
        )
    ids = data.get("val_sample_ids")
    if ids:
        where = np.flatnonzero(np.isin(np.asarray(dataset.train.sample_ids), np.asarray(ids)))
        events = dataset.train.select(where[:max_samples])
    else:
        events = dataset.test.select(np.arange(min(max_samples, len(dataset.test))))
    return events


def export(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None,
    *,
    allow_silent: bool = False,
    scheduler: str | None = None,
    group_size: int | None = None,
    dataset=None,
    check_samples: int = 256,
) -> ExportResult:
    """Quantize ``checkpoint``, check that no layer is silent, and write the artifact to ``out``
    (nothing is written when ``out`` is ``None``).

    Raises
    ------
    UnlayeredError
        The checkpoint is unreadable, the quantized model is invalid, or a layer never fires on
        the check samples (unless ``allow_silent``).
    """
    from .train import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(
        ckpt, scheduler=scheduler, group_size=group_size, source=str(checkpoint)
    )
    events = check_events(ckpt, dataset, check_samples)
    spikes = np.zeros(len(model.sizes))
    if len(events):
        result = simulate(model, events)
        spikes = np.mean([r.spikes for r in result.samples], axis=0)
    silent = [i for i, x in enumerate(spikes) if x == 0]
    if silent and not allow_silent:
        names = ", ".join(f"layer {i} ({model.sizes[i]} neurons)" for i in silent)
        raise UnlayeredError(
            f"{checkpoint}: the exported model is silent: {names} never fired on "
            f"{len(events)} validation samples in the reference simulator (quantization to "
            f"{model.weight_bits}-bit weights, threshold {model.layers[silent[0]].threshold}). "
            "Train longer or with --qat, change --weight-bits, or pass --allow-silent"
        )
    path = save_model(model, out) if out is not None else None
    return ExportResult(model, path, [float(x) for x in spikes], len(events))
