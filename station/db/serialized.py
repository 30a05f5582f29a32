"""Units that serialized themselves (/ioto/serialize): their issue events (actor ``device``, ``details.remote`` the
unit's address), their labels, and per address how many never registered, which is how a line engineer sees
units that restart and ask again. Every query is bounded: the last N issues, or issues since a time."""

from __future__ import annotations

import json
from typing import Any

from ..core.lifecycle import Kind
from .devices import DevicesTable

DEVICE = "device"  # the actor of the device endpoints' events
LABEL_KINDS = (Kind.PRINTED, Kind.REPRINTED, Kind.PRINT_FAILED)


class SerializedTable(DevicesTable):

    def serialized(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` units issued over /ioto/serialize, newest first: ``device`` (a Device), ``product_name``,
        ``remote``, ``time`` (of the issue), ``printed`` (whether a label ever printed) and ``failure``: the details of
        its last ``print-failed`` event, or None."""
        issues = list(self._query(  # newest first along the (kind, time) index
            "SELECT uci, time, details ->> 'remote' AS remote FROM events "
            "WHERE kind = ? AND actor = ? ORDER BY time DESC, id DESC LIMIT ?", (Kind.ISSUED, DEVICE, limit)))
        codes = [row["uci"] for row in issues]
        if not codes:
            return []
        marks = ",".join("?" * len(codes))
        devices = {d.uci: d for d in map(self._device, self._query(self._DEVICE_SELECT + f" WHERE d.uci IN ({marks})",
                                                                    codes))}
        printed: set[str] = set()
        failures: dict[str, dict[str, Any]] = {}
        for row in self._query(f"SELECT uci, kind, details FROM events WHERE uci IN ({marks}) AND kind IN (?, ?, ?) "
                               f"ORDER BY id", (*codes, *LABEL_KINDS)):
            if row["kind"] == Kind.PRINT_FAILED:
                failures[row["uci"]] = json.loads(row["details"])  # the last one stays
            else:
                printed.add(row["uci"])
        names = {p.id: p.name for p in self.products()}
        return [{"device": devices[code], "product_name": names.get(devices[code].product, ""), "remote": row["remote"],
                 "time": row["time"], "printed": code in printed, "failure": failures.get(code)}
                for row in issues if (code := row["uci"]) in devices]

    def unregistered_by_remote(self, since: str) -> list[dict[str, Any]]:
        """Per unit address (``remote``): IDs issued over /ioto/serialize since ``since`` (``issued``) and how
        many of them have no ``registered`` event (``unregistered``), most unregistered first. (``r.kind || ''``: each
        unit's events are found by its UCI, never by scanning every registration.)"""
        return list(self._query(
            "SELECT e.details ->> 'remote' AS remote, count(*) AS issued, "
            "sum(CASE WHEN EXISTS (SELECT 1 FROM events r WHERE r.uci = e.uci AND r.kind || '' = ?) THEN 0 ELSE 1 END) "
            "AS unregistered "
            "FROM events e WHERE e.kind = ? AND e.actor = ? AND e.time >= ? "
            "GROUP BY remote ORDER BY unregistered DESC, remote", (Kind.REGISTERED, Kind.ISSUED, DEVICE, since)))
