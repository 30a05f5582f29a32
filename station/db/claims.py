"""End-user claims: a typed claim code bound to an account, once, and released again for resale or support.

The code is the end user's claim ticket, so a refusal must not tell a guesser which units exist: an unknown
code, a code of another product and a void unit get the same error, after the same work (the code read, one
look-up, one ``refused`` event, one commit).
"""

from __future__ import annotations

from typing import Any

from ..core import fields, lifecycle
from ..core.errors import Conflict, NotFound, StationError
from ..core.lifecycle import Kind
from ..core.models import Device, now
from .devices import DevicesTable

NO_SUCH_UNIT = "no unit has this claim code; check it against the label (0 and O, 1 and I count alike)"
ACCOUNT_MAX = 200  # characters of an account's ID in the maker's cloud (an e-mail address, a UUID)


class NoSuchUnit(NotFound):
    """The one refusal for a code that names no claimable unit: unknown, of another product, or void."""

    def __init__(self) -> None:
        super().__init__(NO_SUCH_UNIT)


class ClaimedElsewhere(Conflict):
    """The unit is claimed by another account."""


def account(value: Any) -> str:
    """An account of the maker's cloud, as events and exports repeat it: text people read, at most ACCOUNT_MAX."""
    return fields.text(value, "the account", ACCOUNT_MAX)


class ClaimsTable(DevicesTable):

    def _claimable(self, typed: str, product_id: str | None) -> Device:
        try:
            device = self.find(typed)
        except NotFound:
            raise NoSuchUnit() from None
        if device.state == lifecycle.VOID or (product_id is not None and device.product != product_id):
            raise NoSuchUnit()
        return device

    def claim(self, typed: str, owner: str, actor: str, product_id: str | None = None) -> tuple[Device, bool]:
        """Bind the unit a person typed the code of to ``owner`` (an account); ``(device, True)`` when claimed
        now, ``(device, False)`` when that account had claimed it already. Every refusal is a ``refused`` event."""
        owner = account(owner)
        refusal: StationError | None = None
        code = ""
        with self.transaction() as conn:
            try:
                device = self._claimable(typed, product_id)
                code = device.uci
                row = conn.execute("SELECT account FROM claims WHERE uci = ?", (code,)).fetchone()
                if row is not None:
                    if row[0] == owner:
                        return device, False
                    raise ClaimedElsewhere("this unit is claimed by another account; its owner can release it, or "
                                           "the maker's support (`station release`)")
                early = self.product(device.product).claim_before_registration
                self._step(conn, code, Kind.CLAIMED, lambda state: lifecycle.claim(state, early), actor,
                           {"account": owner})
                conn.execute("INSERT INTO claims(uci, account, actor, created) VALUES (?, ?, ?, ?)",
                             (code, owner, actor, now()))
            except StationError as exc:
                refusal = exc
                self._event(conn, Kind.REFUSED, actor, {"attempted": Kind.CLAIMED, "account": owner,
                                                        "reason": str(exc)}, code=code or None)
        if refusal is not None:
            raise refusal
        return self.device(code), True

    def release(self, typed: str, reason: str, actor: str) -> Device:
        """Return a claimed unit to ``registered`` (resale, a support case), with the reason and the account it
        leaves in its event."""
        reason = fields.reason(reason, "releasing a claimed unit")
        code = self.find(typed).uci
        with self.transaction() as conn:
            row = conn.execute("SELECT account FROM claims WHERE uci = ?", (code,)).fetchone()
            details = {"reason": reason, "account": row[0] if row else None}
            try:
                self._step(conn, code, Kind.RELEASED, lifecycle.release, actor, details)
                conn.execute("DELETE FROM claims WHERE uci = ?", (code,))
                refusal = None
            except StationError as exc:
                refusal = exc
                self._event(conn, Kind.REFUSED, actor, {**details, "attempted": Kind.RELEASED, "reason": str(exc)},
                            code=code)
        if refusal is not None:
            raise refusal
        return self.device(code)

    def claim_of(self, code: str) -> dict[str, Any] | None:
        """Who claimed the device, and when; None when it is not claimed."""
        for row in self._query("SELECT account, actor, created FROM claims WHERE uci = ?", (code,)):
            return row
        return None
