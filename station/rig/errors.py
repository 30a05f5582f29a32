"""The rig's errors: each names the step of the flash cycle that failed, so that an operator knows where to look."""

from __future__ import annotations

from ..core.errors import StationError


class StepFailed(StationError):
    """A step of the flash cycle failed; ``step`` names it and ``reason`` says why, in words an operator can act on."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"{step}: {reason}")


class StepTimeout(StepFailed):
    """The unit did not answer within the step's time limit."""


class PortLost(StepFailed):
    """The serial port went away in the middle of a step (an adapter unplugged, a cable pulled)."""


class Cancelled(StepFailed):
    """The operator stopped the cycle."""
