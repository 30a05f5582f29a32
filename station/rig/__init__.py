"""The serial test rig: write a unit's device.json5 over its console, prove it arrived, start its first boot
and confirm that it registered with the station.

Layers, each in its own module: ``console`` (the interface a console implements), ``port`` (serial links
through pyserial URLs, the default console), ``shell`` (a POSIX console driver with markers), ``transfer``
(chunked base64 with checks and readback), ``flash`` (the cycle with its events, on any console),
``registration`` (watching the store), ``slots`` (several fixtures at once), ``settings``.
"""

from .console import Connect, Console
from .errors import Cancelled, PortLost, StepFailed, StepTimeout
from .flash import FlashResult, Progress, flash
from .settings import RigSettings, SlotSettings
from .slots import Job, Rig

__all__ = ["Cancelled", "Connect", "Console", "FlashResult", "Job", "PortLost", "Progress", "Rig", "RigSettings",
           "SlotSettings", "StepFailed", "StepTimeout", "flash"]
