"""A simulated Linux unit running the Ioto agent on a serial console (a pseudo-terminal), for tests,
benchmarks and demonstrations of the rig: ``Unit`` as a library, ``station simulate`` on the command line."""

from .faults import FAULTS, Faults
from .unit import Unit

__all__ = ["FAULTS", "Faults", "Unit"]
