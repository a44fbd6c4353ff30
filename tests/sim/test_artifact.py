"""The model artifact: round trips, and a clear error naming the field for every corruption."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unlayered.sim import ArtifactError, LayerSpec, Model, SchedulerSpec, load_model, save_model
from unlayered.sim.model import ARTIFACT_FORMAT, ARTIFACT_VERSION, MAX_SOURCES


def small_model(**changes: Any) -> Model:
    """3 inputs, layers of 4 and 2 neurons: small enough to corrupt by hand."""
    fields = {
        "n_inputs": 3,
        "layers": (
            LayerSpec(size=4, threshold=10, leak=230, reset="zero"),
            LayerSpec(size=2, threshold=20, leak=256, reset="subtract"),
        ),
        "weights": (
            np.arange(12, dtype=np.int64).reshape(4, 3) - 6,
            np.array([[1, -2, 3, -4], [127, -128, 0, 5]]),
        ),
        "scheduler": SchedulerSpec(name="momentum", group_size=2, momentum_shift=3),
        "input_encoding": {"kind": "rate", "num_steps": 10},
        "quantization": {"weight_scale": [0.5, 0.25]},
        "metadata": {"name": "small"},
    }
    fields.update(changes)
    return Model(**fields)


def same_model(a: Model, b: Model) -> bool:
    return a.manifest() == b.manifest() and all(
        np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True)
    )


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def manifest_array(manifest: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("weight_bits", [2, 8, 9, 16])
def test_round_trip(tmp_path, weight_bits):
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    rng = np.random.default_rng(weight_bits)
    w0 = rng.integers(lo, hi + 1, (4, 3))
    w0[0, :2] = lo, hi  # the extremes survive the storage dtype
    w1 = rng.integers(lo, hi + 1, (2, 4))
    model = small_model(
        weights=(w0, w1),
        weight_bits=weight_bits,
        membrane_bits=max(weight_bits, 12),
        leak_shift=9,
        layers=(
            LayerSpec(size=4, threshold=10, leak=460, reset="zero"),
            LayerSpec(size=2, threshold=20, leak=512, reset="subtract"),
        ),
        scheduler=SchedulerSpec(
            name="random",
            group_size=0,
            prioritized_input=False,
            seed=(1 << 32) - 1,
            momentum_buckets=3,
            momentum_shift=31,
            max_groups_per_step=7,
        ),
        decision="first_to_threshold",
    )
    path = save_model(model, tmp_path / "m.npz")
    loaded = load_model(path)
    assert same_model(model, loaded)
    assert loaded.layers == model.layers
    assert loaded.scheduler == model.scheduler
    assert (loaded.input_encoding, loaded.quantization, loaded.metadata) == (
        model.input_encoding,
        model.quantization,
        model.metadata,
    )
    assert all(w.dtype == np.int32 for w in loaded.weights)  # one in-memory dtype
    stored = read_arrays(path)
    assert sorted(stored) == ["manifest", "weights_0", "weights_1"]
    assert stored["weights_0"].dtype == (np.int8 if weight_bits <= 8 else np.int16)
    assert stored["manifest"].dtype == np.uint8
    manifest = json.loads(stored["manifest"].tobytes().decode("utf-8"))
    assert manifest["format"] == ARTIFACT_FORMAT and manifest["version"] == ARTIFACT_VERSION


def test_round_trip_of_numpy_integers(tmp_path):
    """Fields given as numpy integers (as exporters produce them) are written as JSON ints."""
    model = small_model(
        n_inputs=np.int64(3),
        layers=(
            LayerSpec(size=np.int32(4), threshold=np.int64(10), leak=np.uint16(230)),
            LayerSpec(size=2, threshold=20, leak=256),
        ),
        scheduler=SchedulerSpec(name="random", seed=np.uint32(5), group_size=np.int64(3)),
    )
    loaded = load_model(save_model(model, tmp_path / "m.npz"))
    assert loaded.n_inputs == 3 and type(loaded.n_inputs) is int
    assert loaded.layers[0] == LayerSpec(size=4, threshold=10, leak=230)
    assert loaded.scheduler.seed == 5 and loaded.scheduler.group_size == 3


def test_saved_file_is_readable_by_others(tmp_path):
    """The artifact gets the permissions of an ordinary new file, not a temp file's 0600."""
    umask = os.umask(0o022)
    try:
        path = save_model(small_model(), tmp_path / "m.npz")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_save_replaces_an_existing_artifact(tmp_path):
    path = tmp_path / "m.npz"
    save_model(small_model(), path)
    save_model(small_model(decision="first_to_threshold"), path)
    assert load_model(path).decision == "first_to_threshold"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# ---------------------------------------------------------------------------------------------
# Corruptions: each gives ArtifactError naming the field

Edit = Callable[[dict[str, Any], dict[str, np.ndarray]], None]


def _set(key: str, value: Any) -> Edit:
    def edit(m: dict, a: dict) -> None:
        m[key] = value

    return edit


def _set_in(section: str, key: str, value: Any) -> Edit:
    def edit(m: dict, a: dict) -> None:
        m[section][key] = value

    return edit


def _set_layer(i: int, key: str, value: Any) -> Edit:
    def edit(m: dict, a: dict) -> None:
        m["layers"][i][key] = value

    return edit


def _del(key: str) -> Edit:
    def edit(m: dict, a: dict) -> None:
        del m[key]

    return edit


def _array(name: str, value: np.ndarray | None) -> Edit:
    def edit(m: dict, a: dict) -> None:
        if value is None:
            del a[name]
        else:
            a[name] = value

    return edit


def _both(*edits: Edit) -> Edit:
    def edit(m: dict, a: dict) -> None:
        for e in edits:
            e(m, a)

    return edit


VMAX16 = (1 << 15) - 1

# (id, edit of the manifest dict and/or the arrays, text the message must contain)
CORRUPTIONS: list[tuple[str, Edit, str]] = [
    ("format-wrong", _set("format", "onnx"), "'format'"),
    ("format-missing", _del("format"), "'format'"),
    ("version-2", _set("version", 2), "'version'"),
    ("version-0", _set("version", 0), "'version'"),
    ("version-string", _set("version", "1"), "'version'"),
    ("version-float", _set("version", 1.0), "'version'"),
    ("version-bool", _set("version", True), "'version'"),
    ("version-missing", _del("version"), "'version'"),
    ("missing-n_inputs", _del("n_inputs"), "'n_inputs'"),
    ("missing-leak_shift", _del("leak_shift"), "'leak_shift'"),
    ("missing-scheduler", _del("scheduler"), "'scheduler'"),
    ("missing-decision", _del("decision"), "'decision'"),
    ("missing-metadata", _del("metadata"), "'metadata'"),
    ("unknown-field", _set("bias", [1, 2]), "'bias'"),
    ("weight_bits-string", _set("weight_bits", "8"), "'weight_bits'"),
    ("weight_bits-float", _set("weight_bits", 8.0), "'weight_bits'"),
    ("weight_bits-bool", _set("weight_bits", True), "'weight_bits'"),
    ("weight_bits-null", _set("weight_bits", None), "'weight_bits'"),
    ("weight_bits-1", _set("weight_bits", 1), "'weight_bits'"),
    ("weight_bits-17", _set("weight_bits", 17), "'weight_bits'"),
    ("membrane_bits-below-weight_bits", _set("membrane_bits", 7), "'membrane_bits'"),
    ("membrane_bits-33", _set("membrane_bits", 33), "'membrane_bits'"),
    ("membrane_bits-float", _set("membrane_bits", 16.5), "'membrane_bits'"),
    ("leak_shift-negative", _set("leak_shift", -1), "'leak_shift'"),
    ("leak_shift-17", _set("leak_shift", 17), "'leak_shift'"),
    ("leak_shift-string", _set("leak_shift", "8"), "'leak_shift'"),
    ("n_inputs-0", _set("n_inputs", 0), "'n_inputs'"),
    ("n_inputs-negative", _set("n_inputs", -3), "'n_inputs'"),
    ("n_inputs-65536", _set("n_inputs", MAX_SOURCES), "'n_inputs'"),
    ("n_inputs-float", _set("n_inputs", 3.0), "'n_inputs'"),
    ("n_inputs-list", _set("n_inputs", [3]), "'n_inputs'"),
    ("too-many-sources", _set("n_inputs", MAX_SOURCES - 5), "'layers'"),
    ("too-many-neurons", _set_layer(0, "size", MAX_SOURCES - 4), "'layers'"),
    ("layers-empty", _set("layers", []), "'layers'"),
    ("layers-not-a-list", _set("layers", {"size": 4}), "'layers'"),
    ("layer-not-an-object", _set("layers", [4, 2]), "'layers[0]'"),
    ("layer-size-0", _set_layer(1, "size", 0), "'layers[1].size'"),
    ("layer-size-negative", _set_layer(0, "size", -4), "'layers[0].size'"),
    ("layer-size-string", _set_layer(0, "size", "4"), "'layers[0].size'"),
    ("layer-missing-key", lambda m, a: m["layers"][0].pop("leak"), "'layers[0].leak'"),
    ("layer-unknown-key", _set_layer(1, "bias", 0), "'layers[1].bias'"),
    ("threshold-negative", _set_layer(0, "threshold", -1), "'layers[0].threshold'"),
    ("threshold-vmax", _set_layer(1, "threshold", VMAX16), "'layers[1].threshold'"),
    ("threshold-float", _set_layer(0, "threshold", 10.5), "'layers[0].threshold'"),
    ("leak-above-2^shift", _set_layer(0, "leak", 257), "'layers[0].leak'"),
    ("leak-negative", _set_layer(1, "leak", -1), "'layers[1].leak'"),
    ("reset-unknown", _set_layer(1, "reset", "one"), "'layers[1].reset'"),
    ("reset-null", _set_layer(0, "reset", None), "'layers[0].reset'"),
    ("weights-wrong-shape", _array("weights_0", np.zeros((3, 4), np.int8)), "'weights[0]'"),
    ("weights-1d", _array("weights_1", np.zeros(8, np.int8)), "'weights[1]'"),
    ("weights-float", _array("weights_0", np.zeros((4, 3), np.float32)), "'weights[0]'"),
    ("weights-bool", _array("weights_1", np.zeros((2, 4), bool)), "'weights[1]'"),
    ("weights-too-large", _array("weights_1", np.full((2, 4), 128, np.int16)), "'weights[1]'"),
    ("weights-too-small", _array("weights_0", np.full((4, 3), -129, np.int16)), "'weights[0]'"),
    (
        "weights-exceed-weight_bits-4",
        _both(_set("weight_bits", 4), _set("membrane_bits", 8)),
        "'weights[1]'",  # weights[0] (-6..5) fits 4 bits, weights[1] does not
    ),
    ("weights-missing", _array("weights_1", None), "'weights_1'"),
    ("weights-extra", _array("weights_2", np.zeros((2, 2), np.int8)), "'weights_2'"),
    ("array-unknown", _array("bias_0", np.zeros(4, np.int8)), "'bias_0'"),
    ("manifest-missing", _array("manifest", None), "'manifest'"),
    ("manifest-not-json", _array("manifest", np.frombuffer(b"{not json", np.uint8)), "'manifest'"),
    ("manifest-not-utf8", _array("manifest", np.frombuffer(b"\xff\xfe{}", np.uint8)), "'manifest'"),
    ("manifest-json-list", _array("manifest", manifest_array([1, 2])), "'manifest'"),
    ("manifest-wrong-dtype", _array("manifest", np.zeros(4, np.int32)), "'manifest'"),
    ("manifest-2d", _array("manifest", np.zeros((2, 2), np.uint8)), "'manifest'"),
    ("scheduler-not-an-object", _set("scheduler", "fifo"), "'scheduler'"),
    ("scheduler-name-unknown", _set_in("scheduler", "name", "lifo"), "'scheduler.name'"),
    ("scheduler-name-missing", lambda m, a: m["scheduler"].pop("name"), "'scheduler.name'"),
    ("scheduler-unknown-key", _set_in("scheduler", "priority", 1), "'scheduler.priority'"),
    ("group_size-negative", _set_in("scheduler", "group_size", -1), "'scheduler.group_size'"),
    ("group_size-float", _set_in("scheduler", "group_size", 2.0), "'scheduler.group_size'"),
    (
        "prioritized_input-int",
        _set_in("scheduler", "prioritized_input", 1),
        "'scheduler.prioritized_input'",
    ),
    (
        "prioritized_input-string",
        _set_in("scheduler", "prioritized_input", "true"),
        "'scheduler.prioritized_input'",
    ),
    ("seed-negative", _set_in("scheduler", "seed", -1), "'scheduler.seed'"),
    ("seed-2^32", _set_in("scheduler", "seed", 1 << 32), "'scheduler.seed'"),
    (
        "momentum_buckets-0",
        _set_in("scheduler", "momentum_buckets", 0),
        "'scheduler.momentum_buckets'",
    ),
    ("momentum_shift-32", _set_in("scheduler", "momentum_shift", 32), "'scheduler.momentum_shift'"),
    (
        "max_groups_per_step-negative",
        _set_in("scheduler", "max_groups_per_step", -1),
        "'scheduler.max_groups_per_step'",
    ),
    ("decision-unknown", _set("decision", "majority"), "'decision'"),
    ("decision-null", _set("decision", None), "'decision'"),
    ("input_encoding-list", _set("input_encoding", ["rate"]), "'input_encoding'"),
    ("quantization-string", _set("quantization", "none"), "'quantization'"),
    ("metadata-null", _set("metadata", None), "'metadata'"),
]  # fmt: skip


def write_corrupted(path: Path, edit: Edit) -> None:
    """Save the small model, then rewrite its file with ``edit`` applied to manifest and arrays."""
    save_model(small_model(), path)
    arrays = read_arrays(path)
    manifest = json.loads(arrays["manifest"].tobytes().decode("utf-8"))
    arrays["manifest"] = None  # placeholder: re-encoded below unless the edit replaces it
    edit(manifest, arrays)
    if "manifest" in arrays and arrays["manifest"] is None:
        arrays["manifest"] = manifest_array(manifest)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_corruption_table_is_valid_when_unedited(tmp_path):
    """The helper itself: with no edit, the rewritten file loads."""
    path = tmp_path / "m.npz"
    write_corrupted(path, lambda m, a: None)
    assert same_model(load_model(path), small_model())


@pytest.mark.parametrize(("edit", "field"), [pytest.param(e, f, id=i) for i, e, f in CORRUPTIONS])
def test_corrupted_artifact_names_the_field(tmp_path, edit, field):
    path = tmp_path / "m.npz"
    write_corrupted(path, edit)
    with pytest.raises(ArtifactError) as info:
        load_model(path)
    message = str(info.value)
    assert field in message, message
    assert str(path) in message, message  # and the file


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes())


def _truncated(path: Path) -> None:
    save_model(small_model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_zip_body(path: Path) -> None:
    """The zip's directory is intact but an array's bytes are cut short."""
    save_model(small_model(), path)
    arrays = read_arrays(path)
    with zipfile.ZipFile(path, "w") as z:
        for name, value in arrays.items():
            buf = io.BytesIO()
            np.save(buf, value)
            data = buf.getvalue()
            z.writestr(f"{name}.npy", data[:-3] if name == "weights_1" else data)


def _text(path: Path) -> None:
    path.write_text('{"format": "unlayered-model"}')


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _npy(path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


def _directory(path: Path) -> None:
    path.mkdir()


def _missing(path: Path) -> None:
    pass


@pytest.mark.parametrize(
    "make",
    [_garbage, _truncated, _truncated_zip_body, _text, _empty, _npy, _directory, _missing],
)
def test_unreadable_file(tmp_path, make):
    path = tmp_path / "m.npz"
    make(path)
    with pytest.raises(ArtifactError) as info:
        load_model(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------
# Validation on save: nothing is written on failure

INVALID_MODELS = {
    "threshold": lambda: small_model(
        layers=(LayerSpec(4, -1, 230), LayerSpec(2, 20, 256, "subtract"))
    ),
    "weights[1]": lambda: small_model(weights=(np.zeros((4, 3), int), np.full((2, 4), 200))),
    "scheduler.name": lambda: small_model(scheduler=SchedulerSpec(name="lifo")),
    "metadata": lambda: small_model(metadata={"x": float("nan")}),
    "weights": lambda: small_model(weights=(np.zeros((4, 3), int),)),
}


@pytest.mark.parametrize("field", sorted(INVALID_MODELS))
def test_save_invalid_model_writes_nothing(tmp_path, field):
    with pytest.raises(ArtifactError, match=field.replace("[", r"\[").replace("]", r"\]")):
        save_model(INVALID_MODELS[field](), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("field", sorted(INVALID_MODELS))
def test_save_invalid_model_keeps_existing_artifact(tmp_path, field):
    path = save_model(small_model(), tmp_path / "m.npz")
    before = path.read_bytes()
    with pytest.raises(ArtifactError):
        save_model(INVALID_MODELS[field](), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    path = save_model(small_model(), tmp_path / "m.npz")
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(small_model(decision="first_to_threshold"), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_validate_accepts_the_limits():
    """The edges of every range are valid (the table above tests one past them)."""
    small_model(
        weight_bits=16,
        membrane_bits=32,
        leak_shift=16,
        layers=(LayerSpec(4, 0, 0), LayerSpec(2, (1 << 31) - 2, 1 << 16)),
        weights=(np.full((4, 3), -(1 << 15)), np.full((2, 4), (1 << 15) - 1)),
        scheduler=SchedulerSpec(
            name="sync", group_size=MAX_SOURCES, seed=0, momentum_buckets=1024, momentum_shift=0
        ),
    ).validate()
    Model(
        n_inputs=MAX_SOURCES - 2,
        layers=(LayerSpec(1, 0, 0), LayerSpec(1, 0, 0)),
        weights=(np.zeros((1, MAX_SOURCES - 2), np.int8), np.zeros((1, 1), np.int8)),
    ).validate()  # exactly 65536 sources
