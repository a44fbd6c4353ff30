"""Test helpers: small models and event batches, and a loopback link that injects faults."""

from __future__ import annotations

import random

import numpy as np

from unlayered.boards.device_model import DeviceModel
from unlayered.boards.simulated import FAULTS, damage_frame
from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec

__all__ = ["FAULTS", "FaultyLoopback", "small_events", "small_model"]


def small_model(scheduler: str = "random", seed: int = 0, *, group_size: int = 2) -> Model:
    """A 12-input 10-8-4 network that fires a fair amount."""
    rng = np.random.default_rng(seed)
    sizes, fan_in = (10, 8, 4), (12, 10, 8)
    return Model(
        n_inputs=12,
        layers=tuple(LayerSpec(size=s, threshold=6, leak=200, reset="zero") for s in sizes),
        weights=tuple(
            rng.integers(-4, 12, size=(s, f)) for s, f in zip(sizes, fan_in, strict=True)
        ),
        scheduler=SchedulerSpec(name=scheduler, group_size=group_size, seed=1234 + seed),
    )


def small_events(n: int, seed: int = 0, *, n_inputs: int = 12, max_steps: int = 6) -> EventSamples:
    """``n`` samples of random input events (ids not 0..n-1, to check they travel)."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        steps = int(rng.integers(0, max_steps + 1))
        samples.append(
            [
                rng.permutation(n_inputs)[: int(rng.integers(0, n_inputs + 1))].tolist()
                for _ in range(steps)
            ]
        )
    ids = rng.choice(1 << 20, size=n, replace=False) + 17
    return EventSamples.from_lists(samples, sample_ids=ids)


class FaultyLoopback:
    """A transport to a :class:`DeviceModel` in the same process, with scheduled faults.

    ``to_device`` and ``to_host`` map the index of a frame (counted per direction) to a fault:
    ``corrupt`` (one byte changed), ``drop_byte`` (one byte removed), ``duplicate`` (sent twice),
    ``lose`` (not delivered), ``stall`` (delivered only after the host timed out waiting).
    ``random_rate``: besides, each frame in either direction gets a random fault with this
    probability (``rng`` seeded). Reads never block: an empty read is a timeout.
    """

    def __init__(
        self,
        device: DeviceModel,
        *,
        to_device: dict[int, str] | None = None,
        to_host: dict[int, str] | None = None,
        random_rate: float = 0.0,
        seed: int = 0,
    ):
        self.device = device
        self.to_device = dict(to_device or {})
        self.to_host = dict(to_host or {})
        self.random_rate = random_rate
        self.rng = random.Random(seed)
        self.sent = self.replies = 0
        self.injected: list[tuple[str, int, str]] = []
        self._rx = bytearray()
        self._stalled: list[bytes] = []
        self._held: list[bytes] = []

    def _fault(self, table: dict[int, str], index: int, direction: str) -> str | None:
        fault = table.get(index)
        if fault is None and self.random_rate and self.rng.random() < self.random_rate:
            fault = self.rng.choice(FAULTS)
        if fault:
            self.injected.append((direction, index, fault))
        return fault

    def _damage(self, fault: str | None, data: bytes) -> list[bytes]:
        return damage_frame(fault, data, self.rng)

    def write(self, data: bytes) -> None:
        fault = self._fault(self.to_device, self.sent, "to_device")
        self.sent += 1
        if fault == "stall":
            self._held.append(data)
        else:
            for piece in self._damage(fault, data):
                self._deliver(piece)

    def _deliver(self, data: bytes) -> None:
        reply = self.device.receive(data)
        if reply:
            fault = self._fault(self.to_host, self.replies, "to_host")
            self.replies += 1
            if fault == "stall":
                self._stalled.append(reply)
            else:
                for chunk in self._damage(fault, reply):
                    self._rx += chunk

    def read(self, n: int, timeout: float) -> bytes:
        if self._rx:
            out = bytes(self._rx[:n])
            del self._rx[:n]
            return out
        # The host waited its timeout; what was stalled arrives now, too late for this read.
        if self._stalled:
            self._rx += self._stalled.pop(0)
        elif self._held:
            self._deliver(self._held.pop(0))
        return b""
