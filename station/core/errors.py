"""The station's exceptions: each carries a message a person can act on, and a kind the HTTP API maps to a
status (the CLI prints the message on one line and exits non-zero)."""

from __future__ import annotations


class StationError(Exception):
    """Base of every error a user should see; ``status`` is the HTTP status it maps to."""

    status = 400


class Invalid(StationError):
    """The input is malformed or not allowed."""


class NotFound(StationError):
    """A product, device, batch, printer or port that is not there."""

    status = 404


class Conflict(StationError):
    """The request clashes with what is stored (a used name, a serial that has a UCI, a wrong state)."""

    status = 409


class Forbidden(StationError):
    """The caller may not do this."""

    status = 403


class Unavailable(StationError):
    """A resource the station needs is busy, full or unreachable; trying again later may work."""

    status = 503


class NotAStationDatabase(StationError):
    """The file or server database is some other program's, of a newer station, or not yet a station's."""

    status = 503


class BadRows(Invalid):
    """Rows of a list (serials, imported claim IDs) that cannot be stored, each by its line number; all or
    nothing, so the message names every row to fix (the first ``SHOWN``) and says that nothing was stored."""

    SHOWN = 10

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        listed = "; ".join(f"line {number}: {problem}" for number, problem in problems[: self.SHOWN])
        more = f"; and {len(problems) - self.SHOWN} more" if len(problems) > self.SHOWN else ""
        plural = "s" if len(problems) != 1 else ""
        super().__init__(f"{source}: {len(problems)} bad row{plural}, nothing was stored: {listed}{more}")
        self.problems = problems
