"""The bit-exact integer reference simulator ("golden model") and the model artifact.

Pure numpy (plus a numba kernel for speed); no torch. ``docs/semantics.md`` is the contract.
"""

from .errors import ArtifactError, EventsError, UnlayeredError
from .events import EventSamples, load_events, save_events
from .model import LayerSpec, Model, SchedulerSpec, load_model, save_model
from .result import SampleResult
from .simulate import SimulationResult, simulate

__all__ = [
    "ArtifactError",
    "EventSamples",
    "EventsError",
    "LayerSpec",
    "Model",
    "SampleResult",
    "SchedulerSpec",
    "SimulationResult",
    "UnlayeredError",
    "load_events",
    "load_model",
    "save_events",
    "save_model",
    "simulate",
]
