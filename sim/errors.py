"""The one exception type of the project.

Every error a user can cause (a malformed artifact, an out-of-range value, an unknown option, a
bad events file, a protocol fault on the host link) is raised as :class:`UnlayeredError` or a
subclass, with a message that names the file, field or value at fault. The command-line
interface prints the message without a traceback and exits non-zero.
"""

__all__ = ["ArtifactError", "EventsError", "UnlayeredError"]


class UnlayeredError(Exception):
    """Base class of every error the project reports to a user."""


class ArtifactError(UnlayeredError):
    """A model artifact is malformed: the message names the file and the field."""


class EventsError(UnlayeredError):
    """An input events file or sample is malformed: the message names the field and the value."""
