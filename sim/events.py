"""Input event samples and the events file.

An events file is an ``.npz`` (no pickle) with one row per input event:

============== ========= =====================================================================
array          shape     meaning
============== ========= =====================================================================
``sample``     (E,)      index of the event's sample, ``0 .. S-1``
``step``       (E,)      time step, ``0 .. num_steps[sample]-1``
``channel``    (E,)      input channel
``num_steps``  (S,)      time steps of each sample (trailing steps may be empty)
``label``      (S,)      optional: the class of each sample, ``-1`` if unknown
``sample_id``  (S,)      optional: the id that seeds the ``random`` scheduler (default ``0..S-1``)
``format_version`` ()    optional: 1
============== ========= =====================================================================

Within one sample and step, events keep their order in the file: that is their arrival order
(semantics section 5). A channel appears at most once per sample and step.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EventsError

__all__ = ["EVENTS_VERSION", "EventSamples", "load_events", "save_events"]

EVENTS_VERSION = 1


@dataclass(frozen=True, eq=False)
class EventSamples:
    """A batch of samples of input events, grouped by sample and step.

    Members
    -------
    channel
        All events' channels, ordered by sample, then step, then arrival.
    step_ptr
        ``step_ptr[s]`` is an array of ``num_steps[s] + 1`` offsets into ``channel``: the events of
        step ``t`` of sample ``s`` are ``channel[step_ptr[s][t]:step_ptr[s][t + 1]]``.
    labels
        Class per sample, ``-1`` where unknown.
    sample_ids
        The id of each sample (seeds the ``random`` scheduler).
    """

    channel: np.ndarray
    step_ptr: tuple[np.ndarray, ...]
    labels: np.ndarray
    sample_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.step_ptr)

    def num_steps(self, s: int) -> int:
        return len(self.step_ptr[s]) - 1

    def step_events(self, s: int, t: int) -> np.ndarray:
        """Channels of the input events of step ``t`` of sample ``s``, in arrival order."""
        ptr = self.step_ptr[s]
        return self.channel[ptr[t] : ptr[t + 1]]

    def sample_steps(self, s: int) -> list[np.ndarray]:
        """The events of every step of sample ``s``."""
        return [self.step_events(s, t) for t in range(self.num_steps(s))]

    def select(self, indices: np.ndarray | list[int]) -> EventSamples:
        """A batch of some of the samples, keeping their ids and labels."""
        indices = np.asarray(indices, dtype=np.int64)
        steps = [self.sample_steps(int(s)) for s in indices]
        return EventSamples.from_lists(
            steps, labels=self.labels[indices], sample_ids=self.sample_ids[indices]
        )

    @staticmethod
    def from_lists(
        samples: list[list],
        labels: np.ndarray | list[int] | None = None,
        sample_ids: np.ndarray | list[int] | None = None,
    ) -> EventSamples:
        """Build from ``samples[s][t]`` = channels of step ``t`` of sample ``s``, in order."""
        n = len(samples)
        sample = np.concatenate(
            [
                np.full(sum(len(x) for x in steps), s, dtype=np.int64)
                for s, steps in enumerate(samples)
            ]
            or [np.zeros(0, np.int64)]
        )
        step = np.concatenate(
            [np.full(len(x), t, dtype=np.int64) for steps in samples for t, x in enumerate(steps)]
            or [np.zeros(0, np.int64)]
        )
        channel = np.concatenate(
            [np.asarray(x, dtype=np.int64).reshape(-1) for steps in samples for x in steps]
            or [np.zeros(0, np.int64)]
        )
        return from_arrays(
            sample=sample,
            step=step,
            channel=channel,
            num_steps=np.array([len(steps) for steps in samples], dtype=np.int64),
            label=None if labels is None else np.asarray(labels),
            sample_id=np.arange(n) if sample_ids is None else np.asarray(sample_ids),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the events file."""
        counts = [np.diff(p) for p in self.step_ptr]
        sample = np.repeat(np.arange(len(self)), [int(c.sum()) for c in counts])
        step = np.concatenate(
            [np.repeat(np.arange(len(c)), c) for c in counts] or [np.zeros(0, np.int64)]
        )
        return {
            "format_version": np.array(EVENTS_VERSION),
            "sample": sample.astype(np.int64),
            "step": step.astype(np.int64),
            "channel": self.channel,
            "num_steps": np.array([len(p) - 1 for p in self.step_ptr], dtype=np.int64),
            "label": self.labels,
            "sample_id": self.sample_ids,
        }

    def check_channels(self, n_inputs: int, where: str = "events") -> None:
        """Raise :class:`EventsError` if a channel is not an input of a model with ``n_inputs``."""
        bad = np.flatnonzero(self.channel >= n_inputs)
        if len(bad):
            e = int(bad[0])
            s = next(s for s, p in enumerate(self.step_ptr) if p[0] <= e < p[-1])
            t = int(np.searchsorted(self.step_ptr[s], e, side="right")) - 1
            raise EventsError(
                f"{where}: field 'channel': sample {s} step {t} has channel {self.channel[e]}, "
                f"but the model has {n_inputs} input channels"
            )


def _int_array(where: str, name: str, value: np.ndarray, ndim: int) -> np.ndarray:
    value = np.asarray(value)
    if value.ndim != ndim:
        raise EventsError(f"{where}: field '{name}': expected {ndim}-D, got shape {value.shape}")
    if value.size and not np.issubdtype(value.dtype, np.integer):
        raise EventsError(f"{where}: field '{name}': expected integers, got dtype {value.dtype}")
    return value.astype(np.int64)


def from_arrays(
    *,
    sample: np.ndarray,
    step: np.ndarray,
    channel: np.ndarray,
    num_steps: np.ndarray,
    label: np.ndarray | None = None,
    sample_id: np.ndarray | None = None,
    where: str = "events",
) -> EventSamples:
    """Validate the arrays of an events file and group them (see the module docstring)."""
    sample = _int_array(where, "sample", sample, 1)
    step = _int_array(where, "step", step, 1)
    channel = _int_array(where, "channel", channel, 1)
    num_steps = _int_array(where, "num_steps", num_steps, 1)
    n = len(num_steps)
    label = np.full(n, -1, np.int64) if label is None else _int_array(where, "label", label, 1)
    sample_id = np.arange(n) if sample_id is None else _int_array(where, "sample_id", sample_id, 1)
    if not len(sample) == len(step) == len(channel):
        raise EventsError(
            f"{where}: fields 'sample', 'step', 'channel' differ in length: "
            f"{len(sample)}, {len(step)}, {len(channel)}"
        )
    for name, arr in (("label", label), ("sample_id", sample_id)):
        if len(arr) != n:
            raise EventsError(f"{where}: field '{name}': {len(arr)} entries for {n} samples")
    if n and num_steps.min() < 0:
        raise EventsError(f"{where}: field 'num_steps': negative value {num_steps.min()}")
    if len(sample_id) and (sample_id.min() < 0 or sample_id.max() >= 1 << 32):
        raise EventsError(f"{where}: field 'sample_id': ids must be in [0, 2^32)")
    if len(np.unique(sample_id)) != n:
        raise EventsError(f"{where}: field 'sample_id': ids are not unique")
    if len(sample) and (sample.min() < 0 or sample.max() >= n):
        bad = sample[(sample < 0) | (sample >= n)][0]
        raise EventsError(f"{where}: field 'sample': {bad} is not a sample index (0..{n - 1})")
    if len(channel) and channel.min() < 0:
        raise EventsError(f"{where}: field 'channel': negative channel {channel.min()}")
    bad = np.flatnonzero((step < 0) | (step >= num_steps[sample]))
    if len(bad):
        e = bad[0]
        raise EventsError(
            f"{where}: field 'step': sample {sample[e]} has an event at step {step[e]}, outside "
            f"its num_steps={num_steps[sample[e]]}"
        )
    # Group by (sample, step); lexsort is stable, so arrival order survives within a step.
    order = np.lexsort((step, sample))
    sample, step, channel = sample[order], step[order], channel[order]
    by_channel = np.lexsort((channel, step, sample))
    same = np.flatnonzero(
        (np.diff(sample[by_channel]) == 0)
        & (np.diff(step[by_channel]) == 0)
        & (np.diff(channel[by_channel]) == 0)
    )
    if len(same):
        e = by_channel[same[0]]
        raise EventsError(
            f"{where}: field 'channel': channel {channel[e]} occurs twice in sample {sample[e]} "
            f"step {step[e]} (an input channel spikes at most once per step)"
        )
    sample_start = np.searchsorted(sample, np.arange(n + 1))
    step_ptr = []
    for s in range(n):
        lo, hi = sample_start[s], sample_start[s + 1]
        step_ptr.append(lo + np.searchsorted(step[lo:hi], np.arange(num_steps[s] + 1)))
    return EventSamples(
        channel=channel, step_ptr=tuple(step_ptr), labels=label, sample_ids=sample_id
    )


def save_events(events: EventSamples, path: str | os.PathLike) -> Path:
    """Write an events file (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **events.arrays())
    return path


def load_events(path: str | os.PathLike) -> EventSamples:
    """Read and validate an events file; raise :class:`EventsError` naming what is wrong."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise EventsError(f"{where}: no such file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise EventsError(f"{where}: not a readable .npz events file ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise EventsError(f"{where}: not a readable .npz events file (a bare .npy array)")
    with archive:
        names = set(archive.files)
        known = {"sample", "step", "channel", "num_steps", "label", "sample_id", "format_version"}
        for name in sorted({"sample", "step", "channel", "num_steps"} - names):
            raise EventsError(f"{where}: field '{name}': missing array")
        for name in sorted(names - known):
            raise EventsError(f"{where}: field '{name}': unknown array")
        try:
            arrays = {name: archive[name] for name in names}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise EventsError(f"{where}: corrupt array ({exc})") from None
    version = arrays.pop("format_version", np.array(EVENTS_VERSION))
    if (
        version.shape != ()
        or not np.issubdtype(version.dtype, np.integer)
        or int(version) != EVENTS_VERSION
    ):
        raise EventsError(f"{where}: field 'format_version': {version!r} is not supported")
    return from_arrays(where=where, **arrays)
