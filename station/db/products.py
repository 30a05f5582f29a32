"""Products: the Ioto product tokens whose claim IDs the station issues."""

from __future__ import annotations

import json
from typing import Any

from ..core import credentials, fields, uci
from ..core.errors import Conflict, Invalid, NotFound
from ..core.lifecycle import Kind
from ..core.models import Product, now
from .events import EventsTable

Owner = tuple[str, str] | None  # a pre-claimed product's or batch's Ioto account and cloud IDs


def checked_owner(account: str | None, cloud: str | None) -> tuple[str | None, str | None]:
    """Both IDs of a pre-claimed product or batch, checked, or neither."""
    if (account is None) != (cloud is None):
        raise Invalid("pre-claimed units need both their Ioto account and cloud IDs (or neither)")
    if account is not None and cloud is not None:
        return fields.product_id(account, "an Ioto account ID"), fields.product_id(cloud, "an Ioto cloud ID")
    return None, None


class ProductsTable(EventsTable):

    def add_product(self, product_id: str, name: str, model: str, *, description: str = "",
                    bits: int = uci.DEFAULT_BITS, check_symbol: bool = True, claim_url: str | None = None,
                    layout: str | None = None, actor: str = "cli") -> Product:
        """Register a product; its fields (fields.py), size and claim URL are checked here, once, for every caller."""
        product_id = fields.product_id(product_id)
        name, model = fields.text(name, "a product's name"), fields.text(model, "a product's model")
        description = fields.text(description or "", "a product's description", fields.DESCRIPTION_MAX, required=False)
        if layout is not None:
            layout = fields.text(layout, "a product's layout", fields.NAME_MAX)
        uci.validate_bits(bits)
        if claim_url:
            uci.validate_claim_url(fields.text(claim_url, "a product's claim URL", fields.NAME_MAX))
        created = now()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM products WHERE id = ?", (product_id,)).fetchone():
                raise Conflict(f"product {product_id} already exists; `station product list` shows it")
            conn.execute(
                "INSERT INTO products(id, name, model, description, bits, check_symbol, claim_url, layout, enabled, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (product_id, name, model, description, bits, int(check_symbol), claim_url or None, layout, created),
            )
            self._event(conn, Kind.PRODUCT_ADDED, actor, {"product": product_id, "name": name, "bits": bits})
        return self.product(product_id)

    @staticmethod
    def _product(row: dict[str, Any]) -> Product:
        return Product(**{**row, "check_symbol": bool(row["check_symbol"]), "enabled": bool(row["enabled"]),
                          "credentials": credentials.stored(row["credentials"]),
                          "claim_before_registration": bool(row["claim_before_registration"])})

    def product(self, product_id: str) -> Product:
        """The product, or an error naming it and where to look."""
        for row in self._query("SELECT * FROM products WHERE id = ?", (product_id,)):
            return self._product(row)
        raise NotFound(f"unknown product {product_id!r}: add it with `station product add` or check `station product list`")

    def products(self) -> list[Product]:
        return [self._product(r) for r in self._query("SELECT * FROM products ORDER BY created, id")]

    def set_product_enabled(self, product_id: str, enabled: bool, actor: str = "cli") -> Product:
        self.product(product_id)
        with self.transaction() as conn:
            conn.execute("UPDATE products SET enabled = ? WHERE id = ?", (int(enabled), product_id))
            self._event(conn, Kind.PRODUCT_ENABLED if enabled else Kind.PRODUCT_DISABLED, actor, {"product": product_id})
        return self.product(product_id)


    def set_product_credentials(self, product_id: str, settings: credentials.CredentialSettings,
                                actor: str = "cli") -> Product:
        """Which credentials the product's units get from now on, and where the rig writes them; units flashed
        before keep what they have."""
        self.product(product_id)
        with self.transaction() as conn:
            conn.execute("UPDATE products SET credentials = ? WHERE id = ?", (settings.to_json(), product_id))
            self._event(conn, Kind.PRODUCT_CREDENTIALS, actor, {"product": product_id, **json.loads(settings.to_json())})
        return self.product(product_id)

    def set_product_claiming(self, product_id: str, before_registration: bool, actor: str = "cli") -> Product:
        """Whether the product's units may be claimed before they register (pre-claimed factory flows)."""
        self.product(product_id)
        with self.transaction() as conn:
            conn.execute("UPDATE products SET claim_before_registration = ? WHERE id = ?",
                         (int(before_registration), product_id))
            self._event(conn, Kind.PRODUCT_CLAIMING, actor, {"product": product_id,
                                                              "before_registration": before_registration})
        return self.product(product_id)

    def set_product_owner(self, product_id: str, account: str | None, cloud: str | None, actor: str = "cli") -> Product:
        """Pre-claimed units: the Ioto account and cloud IDs every device file of the product carries from now on
        (both, or neither to stop)."""
        account, cloud = checked_owner(account, cloud)
        self.product(product_id)
        with self.transaction() as conn:
            conn.execute("UPDATE products SET account = ?, cloud = ? WHERE id = ?", (account, cloud, product_id))
            self._event(conn, Kind.PRODUCT_OWNER, actor, {"product": product_id, "account": account, "cloud": cloud})
        return self.product(product_id)
