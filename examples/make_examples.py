"""Write the example model artifact and events file (``examples/model.npz``, ``events.npz``).

The network is built by hand, not trained: a toy rate-coded classification task with 10 classes
over 64 input channels, a hidden layer of 32 neurons each tuned to one class, and an output layer
of 10 neurons that read out their class's hidden neurons. It is small (a few KB), deterministic
(fixed seed, no clock in the files) and chosen to be active under every scheduler: hidden and
output spikes occur in most samples, so that the demo and the tests exercise real traffic.

Run it again after changing it (``tests/test_examples.py`` checks that the committed files are
what this script writes)::

    .venv/bin/python examples/make_examples.py            # writes examples/*.npz
    .venv/bin/python examples/make_examples.py --out DIR  # somewhere else
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, save_events, save_model

__all__ = ["SEED", "make_events", "make_examples", "make_model"]

SEED = 20250801
N_INPUTS = 64
N_HIDDEN = 32
N_CLASSES = 10
N_SAMPLES = 20
N_STEPS = 20
ACTIVE_CHANNELS = 16  # channels that fire often for a class
RATE_ON, RATE_OFF = 0.15, 0.07  # spike probability per step of a class's channels, of the others


def _prototypes(rng: np.random.Generator) -> np.ndarray:
    """``(classes, inputs)`` bool: which channels fire often for each class."""
    protos = np.zeros((N_CLASSES, N_INPUTS), dtype=bool)
    for k in range(N_CLASSES):
        protos[k, rng.permutation(N_INPUTS)[:ACTIVE_CHANNELS]] = True
    return protos


def make_model(rng: np.random.Generator, protos: np.ndarray) -> Model:
    """The quantized network: 64 inputs, 32 hidden neurons, 10 outputs, 8-bit weights."""
    # Hidden neuron j is tuned to class j % 10: excited by that class's channels, mildly
    # inhibited by the others, plus noise so that every neuron differs.
    tuned = np.arange(N_HIDDEN) % N_CLASSES
    w1 = np.where(protos[tuned], 40.0, -12.0) + rng.normal(0.0, 14.0, (N_HIDDEN, N_INPUTS))
    # Output k reads its hidden neurons and is inhibited by the others'.
    w2 = np.where(tuned[None, :] == np.arange(N_CLASSES)[:, None], 70.0, -20.0)
    w2 = w2 + rng.normal(0.0, 12.0, (N_CLASSES, N_HIDDEN))
    weights = tuple(np.clip(np.rint(w), -128, 127).astype(np.int8) for w in (w1, w2))
    return Model(
        n_inputs=N_INPUTS,
        layers=(
            LayerSpec(size=N_HIDDEN, threshold=90, leak=230, reset="zero"),
            LayerSpec(size=N_CLASSES, threshold=120, leak=230, reset="zero"),
        ),
        weights=weights,
        weight_bits=8,
        membrane_bits=16,
        leak_shift=8,
        scheduler=SchedulerSpec(
            name="momentum",
            group_size=4,
            prioritized_input=True,
            seed=1,
            momentum_buckets=8,
            momentum_shift=4,
            max_groups_per_step=0,
        ),
        decision="argmax_spike_count",
        input_encoding={
            "kind": "rate",
            "description": "each channel spikes with a per-step probability that depends on "
            f"the class: {ACTIVE_CHANNELS} channels per class at {RATE_ON}, the others at "
            f"{RATE_OFF}; events of a step arrive in random order",
            "num_steps": N_STEPS,
            "classes": N_CLASSES,
        },
        quantization={
            "description": "hand-built integer weights, not trained: no float scales",
            "weight_scale": [1.0, 1.0],
        },
        metadata={
            "name": "unlayered example",
            "generator": "examples/make_examples.py",
            "seed": SEED,
        },
    )


def make_events(rng: np.random.Generator, protos: np.ndarray) -> EventSamples:
    """``N_SAMPLES`` labelled samples of ``N_STEPS`` steps; two samples per class.

    Within a step the events arrive in a random order (not sorted by channel), so that arrival
    order matters and is exercised.
    """
    labels = np.arange(N_SAMPLES) % N_CLASSES
    samples = []
    for label in labels:
        rates = np.where(protos[label], RATE_ON, RATE_OFF)
        steps = []
        for _ in range(N_STEPS):
            fired = np.flatnonzero(rng.random(N_INPUTS) < rates)
            steps.append(rng.permutation(fired))
        samples.append(steps)
    return EventSamples.from_lists(samples, labels=labels, sample_ids=np.arange(N_SAMPLES))


def make_examples(out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``model.npz`` and ``events.npz`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(SEED)
    protos = _prototypes(rng)
    model = make_model(rng, protos)
    events = make_events(rng, protos)
    return save_model(model, out_dir / "model.npz"), save_events(events, out_dir / "events.npz")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output directory (default: the examples/ folder)",
    )
    args = parser.parse_args(argv)
    for path in make_examples(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
