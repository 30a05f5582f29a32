"""``station webhooks list``: each configured endpoint's backlog and its deliveries' state, read from the
database beside a running `station serve` (which delivers); never a secret."""

from __future__ import annotations

import click

from ..core.errors import NotFound, Unavailable
from ..webhooks.delivery import send_test
from .base import Station, echo_table, pass_station


@click.group()
def webhooks() -> None:
    """Webhook endpoints of station.json5 (key webhooks) and how their deliveries go."""


@webhooks.command("list")
@pass_station
def list_(station: Station) -> None:
    """Each endpoint's URL, kinds, backlog (events of its kinds not yet delivered), the station delivering them
    (one of those that name the endpoint), last delivery, failed attempts at the event now waiting, and the last
    error."""
    endpoints = station.config.get("webhooks")
    if not endpoints:
        click.echo(f"no webhooks configured; list them under webhooks in {station.config.config_path}")
        return
    rows = []
    for endpoint, state in zip(endpoints, station.store.webhook_states(endpoints), strict=True):
        attempts = f"{state.attempts} (next {state.next_attempt})" if state.attempts else "0"
        error = f"{state.last_error} (at {state.last_error_at})" if state.last_error else "-"
        rows.append((endpoint.name, endpoint.url, ",".join(endpoint.kinds), state.backlog, state.holder or "-",
                     state.last_delivered or "never", attempts, error))
    echo_table(("endpoint", "url", "kinds", "backlog", "delivered by", "last delivered", "attempts", "last error"), rows)


@webhooks.command("test")
@click.argument("name")
@pass_station
def test(station: Station, name: str) -> None:
    """Send the endpoint NAME one signed `webhook-test` delivery now (no stored event, no cursor moved), to check
    its URL, secret and the receiver's signature check; exit 1 with what went wrong."""
    endpoints = {endpoint.name: endpoint for endpoint in station.config.get("webhooks")}
    if name not in endpoints:
        raise NotFound(f"no webhook endpoint {name!r} in {station.config.config_path} "
                       f"(endpoints: {', '.join(endpoints) or 'none'})")
    error = send_test(endpoints[name], station.config.station)
    if error is not None:
        raise Unavailable(f"the test delivery to {name} ({endpoints[name].url}) failed: {error}")
    click.echo(f"delivered a signed webhook-test event to {name} ({endpoints[name].url})")
