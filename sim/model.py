"""The deployed model: every parameter of the execution contract, and its artifact file.

A :class:`Model` is what all four implementations (torch, reference simulator, gateware, board)
take as input. :func:`save_model` and :func:`load_model` write and read the artifact, a single
``.npz`` file holding a JSON manifest and the integer weight arrays; no pickle anywhere. Loading
validates every field and raises :class:`ArtifactError` naming the file, the field and the value.
The format is documented in ``docs/artifact.md``; the meaning of each field in
``docs/semantics.md``.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactError

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "DECISION_RULES",
    "MAX_SOURCES",
    "RESET_MODES",
    "SCHEDULERS",
    "LayerSpec",
    "Model",
    "SchedulerSpec",
    "load_model",
    "save_model",
]

ARTIFACT_FORMAT = "unlayered-model"
ARTIFACT_VERSION = 1
SCHEDULERS = ("sync", "fifo", "random", "momentum")
RESET_MODES = ("zero", "subtract")
DECISION_RULES = ("argmax_spike_count", "first_to_threshold")
MAX_SOURCES = 1 << 16  # input channels + neurons: the 16-bit source address (semantics 1, 6.3)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of integer LIF neurons (semantics section 3)."""

    size: int
    threshold: int
    leak: int
    reset: str = "zero"


@dataclass(frozen=True)
class SchedulerSpec:
    """The arbitration policy and its parameters (semantics section 6)."""

    name: str = "fifo"
    group_size: int = 1  # F; 0 means unbounded
    prioritized_input: bool = True
    seed: int = 1
    momentum_buckets: int = 8
    momentum_shift: int = 0
    max_groups_per_step: int = 0  # 0 means no cap


@dataclass(frozen=True, eq=False)
class Model:
    """A quantized network and its execution parameters.

    Parameters
    ----------
    n_inputs
        Number of input channels.
    layers
        The layers, input side first; the last is the output layer.
    weights
        One integer array per layer, shape ``(size[l], fan_in[l])`` (``[target, source]``).
    weight_bits, membrane_bits, leak_shift
        Widths of the integer arithmetic.
    scheduler
        Scheduler name and parameters.
    decision
        ``argmax_spike_count`` or ``first_to_threshold``.
    input_encoding, quantization, metadata
        Informative dictionaries (JSON values) for the training side and for people: how inputs
        were encoded, the float scales used in quantization, provenance.
    """

    n_inputs: int
    layers: tuple[LayerSpec, ...]
    weights: tuple[np.ndarray, ...]
    weight_bits: int = 8
    membrane_bits: int = 16
    leak_shift: int = 8
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    decision: str = "argmax_spike_count"
    input_encoding: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "weights", tuple(np.asarray(w) for w in self.weights))

    # Derived quantities. They are never stored, so they can never disagree with the fields.
    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(layer.size for layer in self.layers)

    @property
    def n_neurons(self) -> int:
        return sum(self.sizes)

    @property
    def layer_starts(self) -> tuple[int, ...]:
        """Global index of each layer's first neuron."""
        return tuple(int(x) for x in np.cumsum((0, *self.sizes[:-1])))

    @property
    def vmin(self) -> int:
        return -(1 << (self.membrane_bits - 1))

    @property
    def vmax(self) -> int:
        return (1 << (self.membrane_bits - 1)) - 1

    def with_scheduler(self, **changes: Any) -> Model:
        """A copy with some scheduler parameters changed (validated)."""
        model = replace(self, scheduler=replace(self.scheduler, **changes))
        model.validate()
        return model

    def validate(self, where: str = "model") -> None:
        """Check every field; raise :class:`ArtifactError` naming the first bad one."""
        _validate(self, where)

    def manifest(self) -> dict[str, Any]:
        """The JSON manifest of the artifact (everything but the weight arrays)."""
        return {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "n_inputs": self.n_inputs,
            "layers": [
                {"size": s.size, "threshold": s.threshold, "leak": s.leak, "reset": s.reset}
                for s in self.layers
            ],
            "weight_bits": self.weight_bits,
            "membrane_bits": self.membrane_bits,
            "leak_shift": self.leak_shift,
            "scheduler": {f.name: getattr(self.scheduler, f.name) for f in fields(SchedulerSpec)},
            "decision": self.decision,
            "input_encoding": self.input_encoding,
            "quantization": self.quantization,
            "metadata": self.metadata,
        }


def _json_default(value: Any) -> Any:
    """Numpy integers (as exporters produce them) are written as JSON integers."""
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


# ---------------------------------------------------------------------------------------------
# Validation


def _fail(where: str, name: str, message: str) -> ArtifactError:
    return ArtifactError(f"{where}: field '{name}': {message}")


def _check_int(where: str, name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise _fail(where, name, f"expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(where, name, f"{value} is out of range [{lo}, {hi}]")
    return int(value)


def _check_choice(where: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(where, name, f"unknown value {value!r}; expected one of {', '.join(choices)}")
    return value


def _validate(model: Model, where: str) -> None:
    _check_int(where, "weight_bits", model.weight_bits, 2, 16)
    _check_int(where, "membrane_bits", model.membrane_bits, model.weight_bits, 32)
    _check_int(where, "leak_shift", model.leak_shift, 0, 16)
    _check_int(where, "n_inputs", model.n_inputs, 1, MAX_SOURCES - 1)
    if len(model.layers) == 0:
        raise _fail(where, "layers", "a model needs at least one layer")
    if len(model.weights) != len(model.layers):
        raise _fail(where, "weights", f"{len(model.weights)} arrays for {len(model.layers)} layers")
    for i, layer in enumerate(model.layers):
        name = f"layers[{i}]"
        if not isinstance(layer, LayerSpec):
            raise _fail(where, name, f"expected a LayerSpec, got {type(layer).__name__}")
        _check_int(where, f"{name}.size", layer.size, 1, MAX_SOURCES - 1)
        _check_int(where, f"{name}.threshold", layer.threshold, 0, model.vmax - 1)
        _check_int(where, f"{name}.leak", layer.leak, 0, 1 << model.leak_shift)
        _check_choice(where, f"{name}.reset", layer.reset, RESET_MODES)
    total = model.n_inputs + model.n_neurons
    if total > MAX_SOURCES:
        raise _fail(
            where, "layers", f"{total} input channels and neurons exceed the {MAX_SOURCES} sources"
        )
    wmin, wmax = -(1 << (model.weight_bits - 1)), (1 << (model.weight_bits - 1)) - 1
    fan_in = model.n_inputs
    for i, (layer, w) in enumerate(zip(model.layers, model.weights, strict=True)):
        name = f"weights[{i}]"
        if not np.issubdtype(w.dtype, np.integer):
            raise _fail(where, name, f"expected integers, got dtype {w.dtype}")
        if w.shape != (layer.size, fan_in):
            raise _fail(where, name, f"shape {w.shape}, expected {(layer.size, fan_in)}")
        if w.size and (w.min() < wmin or w.max() > wmax):
            bad = w.min() if w.min() < wmin else w.max()
            raise _fail(
                where,
                name,
                f"value {bad} does not fit weight_bits={model.weight_bits} [{wmin}, {wmax}]",
            )
        fan_in = layer.size
    s = model.scheduler
    if not isinstance(s, SchedulerSpec):
        raise _fail(where, "scheduler", f"expected a SchedulerSpec, got {type(s).__name__}")
    _check_choice(where, "scheduler.name", s.name, SCHEDULERS)
    _check_int(where, "scheduler.group_size", s.group_size, 0, MAX_SOURCES)
    if not isinstance(s.prioritized_input, bool):
        raise _fail(
            where, "scheduler.prioritized_input", f"expected a boolean, got {s.prioritized_input!r}"
        )
    _check_int(where, "scheduler.seed", s.seed, 0, (1 << 32) - 1)
    _check_int(where, "scheduler.momentum_buckets", s.momentum_buckets, 1, 1024)
    _check_int(where, "scheduler.momentum_shift", s.momentum_shift, 0, 31)
    _check_int(where, "scheduler.max_groups_per_step", s.max_groups_per_step, 0, 1 << 31)
    _check_choice(where, "decision", model.decision, DECISION_RULES)
    for name in ("input_encoding", "quantization", "metadata"):
        value = getattr(model, name)
        if not isinstance(value, dict):
            raise _fail(where, name, f"expected a JSON object, got {type(value).__name__}")
        try:
            json.dumps(value, allow_nan=False, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise _fail(where, name, f"not JSON-serializable: {exc}") from None


# ---------------------------------------------------------------------------------------------
# The artifact file


def _storage_dtype(weight_bits: int) -> np.dtype:
    return np.dtype(np.int8) if weight_bits <= 8 else np.dtype(np.int16)


def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Validate ``model`` and write its artifact to ``path`` atomically.

    Nothing is written when validation fails, and an existing file at ``path`` is replaced only
    once the new one is complete.
    """
    path = Path(path)
    model.validate(where=str(path))
    manifest = json.dumps(
        model.manifest(), indent=1, allow_nan=False, default=_json_default
    ).encode()
    arrays = {"manifest": np.frombuffer(manifest, dtype=np.uint8)}
    dtype = _storage_dtype(model.weight_bits)
    for i, w in enumerate(model.weights):
        arrays[f"weights_{i}"] = w.astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target, then renamed over it: a reader never sees half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


_MANIFEST_KEYS = {
    "format", "version", "n_inputs", "layers", "weight_bits", "membrane_bits", "leak_shift",
    "scheduler", "decision", "input_encoding", "quantization", "metadata",
}  # fmt: skip
_LAYER_KEYS = {"size", "threshold", "leak", "reset"}


def _read_manifest(where: str, archive: Any) -> dict[str, Any]:
    if "manifest" not in archive.files:
        raise _fail(where, "manifest", "missing: not an unlayered model artifact")
    try:
        raw = archive["manifest"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _fail(where, "manifest", f"corrupt array ({exc})") from None
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _fail(where, "manifest", f"expected UTF-8 bytes, got {raw.dtype} {raw.shape}")
    try:
        manifest = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(where, "manifest", f"not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise _fail(where, "manifest", "expected a JSON object")
    if manifest.get("format") != ARTIFACT_FORMAT:
        raise _fail(where, "format", f"{manifest.get('format')!r}, expected {ARTIFACT_FORMAT!r}")
    version = manifest.get("version")
    if type(version) is not int or version != ARTIFACT_VERSION:  # not 1.0, not true
        raise _fail(
            where,
            "version",
            f"{manifest.get('version')!r} is not supported "
            f"(this version of unlayered reads version {ARTIFACT_VERSION})",
        )
    missing = _MANIFEST_KEYS - manifest.keys()
    if missing:
        raise _fail(where, sorted(missing)[0], "missing")
    unknown = manifest.keys() - _MANIFEST_KEYS
    if unknown:
        raise _fail(where, sorted(unknown)[0], "unknown field")
    return manifest


def _layer_from_json(where: str, i: int, entry: Any) -> LayerSpec:
    name = f"layers[{i}]"
    if not isinstance(entry, dict):
        raise _fail(where, name, "expected a JSON object")
    for key in sorted(_LAYER_KEYS ^ entry.keys()):
        raise _fail(where, f"{name}.{key}", "missing" if key in _LAYER_KEYS else "unknown field")
    return LayerSpec(**entry)


def _scheduler_from_json(where: str, entry: Any) -> SchedulerSpec:
    if not isinstance(entry, dict):
        raise _fail(where, "scheduler", "expected a JSON object")
    known = {f.name for f in fields(SchedulerSpec)}
    for key in sorted(entry.keys() - known):
        raise _fail(where, f"scheduler.{key}", "unknown field")
    if "name" not in entry:
        raise _fail(where, "scheduler.name", "missing")
    return SchedulerSpec(**entry)


def load_model(path: str | os.PathLike) -> Model:
    """Read and validate an artifact; raise :class:`ArtifactError` naming what is wrong."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ArtifactError(f"{where}: no such file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{where}: not a readable .npz artifact ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ArtifactError(f"{where}: not a readable .npz artifact (a bare .npy array)")
    with archive:
        manifest = _read_manifest(where, archive)
        layers = manifest["layers"]
        if not isinstance(layers, list) or not layers:
            raise _fail(where, "layers", "expected a non-empty list")
        expected = {"manifest"} | {f"weights_{i}" for i in range(len(layers))}
        for name in sorted(expected - set(archive.files)):
            raise _fail(where, name, "missing array")
        for name in sorted(set(archive.files) - expected):
            raise _fail(where, name, "unexpected array")
        weights = []
        for i in range(len(layers)):
            try:
                weights.append(archive[f"weights_{i}"])
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise _fail(where, f"weights_{i}", f"corrupt array ({exc})") from None
    model = Model(
        n_inputs=manifest["n_inputs"],
        layers=tuple(_layer_from_json(where, i, e) for i, e in enumerate(layers)),
        weights=tuple(weights),
        weight_bits=manifest["weight_bits"],
        membrane_bits=manifest["membrane_bits"],
        leak_shift=manifest["leak_shift"],
        scheduler=_scheduler_from_json(where, manifest["scheduler"]),
        decision=manifest["decision"],
        input_encoding=manifest["input_encoding"],
        quantization=manifest["quantization"],
        metadata=manifest["metadata"],
    )
    model.validate(where)
    # One in-memory dtype for every consumer, whatever width the file stores.
    return replace(model, weights=tuple(w.astype(np.int32) for w in model.weights))
