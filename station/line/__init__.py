"""The production line's unit cycle, owned here once and driven by the operator pages (``station.web.line``)
and by ``station rig run``: checks before a claim ID is spent, issue, label, flash through the rig, verdict."""

from .cycle import FAIL, PASS, UnitCycle, Verdict

__all__ = ["FAIL", "PASS", "UnitCycle", "Verdict"]
