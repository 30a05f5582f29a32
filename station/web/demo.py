"""``station serve --demo``: the whole line without hardware, for a newcomer's first minute.

It adds the Ioto sample product, a file printer that writes PNG labels into the data directory, one
simulated unit on a pseudo-terminal as rig slot ``demo``, and an operator account with a fresh password.
Nothing of it is written to station.json5: the demo lives only as long as the server.
"""

from __future__ import annotations

import secrets
from typing import Any

from .. import accounts
from ..config import Config
from ..core.errors import Conflict, NotFound
from ..simulator.unit import Unit
from ..store import Store

PRODUCT = ("01H4R15D3478JD26YDYK408XE6", "Blank", "Blank-01", "Blank slate app")
OPERATOR = "operator"
PRINTER = "demo-labels"
SLOT = "demo"


class Demo:
    """The demo's parts; ``stop`` powers the simulated unit off."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.password = secrets.token_urlsafe(9)
        self.unit = Unit()  # its station URL is known once the server listens: see point_at
        port = self.unit.start()
        try:
            self._prepare(port)
        except BaseException:
            self.unit.stop()
            raise

    def _prepare(self, port: str) -> None:
        values: dict[str, Any] = self.config.values
        values["printers"] = {**self.config.get("printers"),
                              PRINTER: {"type": "file", "path": str(self.config.data_dir / PRINTER), "format": "png"}}
        values["slots"] = {**self.config.get("slots"), SLOT: {"port": port}}
        values.setdefault("rig", {"register_timeout": 30})
        with Store.configured(self.config) as store:
            others = [user.name for user in accounts.users(store) if user.name != OPERATOR]
            if others:
                raise Conflict(
                    f"{self.config.data_dir} holds a station in use (accounts {', '.join(others)}); the demo would "
                    f"reset its operator account: run it on its own data directory, "
                    f"e.g. `station --data-dir station-demo serve --demo`")
            product_id, name, model, description = PRODUCT
            try:
                store.product(product_id)
            except NotFound:
                store.add_product(product_id, name, model, description=description, actor="demo")
            if any(user.name == OPERATOR for user in accounts.users(store)):
                accounts.set_password(store, OPERATOR, self.password, actor="demo")
            else:
                accounts.add_user(store, OPERATOR, "operator", self.password, actor="demo")

    def point_at(self, url: str) -> None:
        """Tell the simulated agent where the station listens, for its first-boot registration."""
        self.unit.builder = url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:").rstrip("/") + "/api"

    def stop(self) -> None:
        self.unit.stop()
