"""What the line page shows of units that serialized themselves (/ioto/serialize): the last ones with their labels
(and, for a label that did not print, why, and on which printer a new try goes), and per unit address how many
IDs were issued without a registration since a time: units that restart and ask again show there."""

from __future__ import annotations

from typing import Any

from .. import times
from ..config import Config
from ..core import lifecycle
from ..labels import factory
from ..store import Store

SHOWN = 20  # units listed: the newest; older ones are on the devices page
WAITING = "waiting for the printer"
NOT_TRIED = "no print was tried (the station stopped before it)"


def report(store: Store, config: Config, labels: factory.FactoryLabels, since: str) -> dict[str, Any]:
    """The line page's section as JSON: ``units`` newest first, ``addresses`` counted since ``since``."""
    pending = labels.pending()
    units = []
    for row in store.serialized(SHOWN):
        device, printed, failure = row["device"], row["printed"], row["failure"]
        where = factory.target(config, device.product, row["remote"])
        if printed or device.state == lifecycle.VOID:
            reason = ""
        elif device.uci in pending:
            reason = WAITING
        elif failure is not None:
            reason = str(failure.get("error", ""))
        else:
            reason = where.reason or NOT_TRIED
        units.append({"uci": device.uci, "display": device.display, "product": device.product,
                      "product_name": row["product_name"], "remote": row["remote"], "time": row["time"],
                      "shown": times.shown(row["time"], config.zone),
                      "state": device.state, "printed": printed, "reason": reason,
                      "may_print": not printed and device.state != lifecycle.VOID and reason != WAITING,
                      "printer": where.printer})
    return {"units": units, "addresses": store.unregistered_by_remote(since)}
