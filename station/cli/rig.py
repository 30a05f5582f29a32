"""``station rig``: flash a device's device.json5 onto a unit and confirm its registration, from a terminal."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from .. import terminal
from ..core.errors import Invalid
from ..line.cycle import UnitCycle
from ..rig import settings as rig_settings
from ..rig.adopt import adopt
from ..rig.credentials import Issuing
from ..rig.errors import StepFailed
from ..rig.flash import FlashResult, Progress, flash
from ..rig.settings import RigSettings, SlotSettings
from ..rig.slots import Rig
from ..store import Device
from .base import Station, StationGroup, pass_station

PASSWORD_ENV = "STATION_RIG_PASSWORD"  # the console password of a slot given by --port alone, never on the command line


@click.group(cls=StationGroup)
def rig() -> None:
    """The serial test rig: write device.json5 onto units, verify it, start their first boot."""


def _slot_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--port", default=None, help="Serial port: /dev/ttyUSB0, COM3, socket://host:port, rfc2217://..."),
        click.option("--slot", "slot_name", default=None, help="A slot of station.json5 (its port, line and login)."),
        click.option("--baud", type=int, default=None, help="Baud rate [default: the slot's, else 115200]."),
        click.option("--user", default=None, help="Console user [default: the slot's, else root]."),
        click.option("--register-timeout", type=float, default=None, help="Seconds to wait for the registration."),
    )):
        command = option(command)
    return command


def _settings(station: Station, slot_name: str | None, port: str | None, baud: int | None, user: str | None,
              register_timeout: float | None) -> tuple[RigSettings, SlotSettings]:
    settings = rig_settings.load(station.config)
    if register_timeout is not None:
        if register_timeout <= 0:
            raise Invalid("--register-timeout must be a number of seconds above 0")
        settings = replace(settings, register_timeout=register_timeout)
    slot = settings.slot(slot_name, port, baud=baud, user=user, password=os.environ.get(PASSWORD_ENV))
    return settings, slot


def _echo(progress: Progress) -> None:
    click.echo(terminal.escape(f"[{progress.slot}] {progress.step}: {progress.message}"))  # may quote the unit's output


def _flash(station: Station, settings: RigSettings, slot: SlotSettings, device: Device) -> None:
    click.echo(f"[{slot.name}] flashing {device.display} on {slot.port}")
    result: FlashResult = flash(station.store, settings, slot, device.uci, progress=_echo,
                                issuing=Issuing.of(station.config))
    click.echo(terminal.escape(result.summary()))
    if not result.passed:
        raise click.exceptions.Exit(1)


@rig.command("flash")
@click.argument("code")
@_slot_options
@pass_station
def flash_command(station: Station, code: str, port: str | None, slot_name: str | None, baud: int | None,
                  user: str | None, register_timeout: float | None) -> None:
    """Flash the issued device CODE onto the unit on the port, verify it, and confirm its registration."""
    settings, slot = _settings(station, slot_name, port, baud, user, register_timeout)
    _flash(station, settings, slot, station.store.find(code))


@rig.command("run")
@click.option("--product", "product_id", required=True, help="Product ID of the unit in the fixture.")
@click.option("--serial", default=None, help="The unit's serial number, recorded with its claim ID.")
@click.option("--label", "with_label", is_flag=True, help="Print the unit's label before flashing it.")
@click.option("--printer", default=None, help="Label printer from station.json5 [default: label_printer].")
@_slot_options
@pass_station
def run_command(station: Station, product_id: str, serial: str | None, with_label: bool, printer: str | None,
                port: str | None, slot_name: str | None, baud: int | None, user: str | None,
                register_timeout: float | None) -> None:
    """Issue a claim ID for the unit in the fixture, label it if asked, flash it and confirm its registration:
    the line's unit cycle (station.line), with its checks before issuing and its verdict event."""
    settings, slot = _settings(station, slot_name, port, baud, user, register_timeout)
    config = station.config
    cycle = UnitCycle(config, Rig.of(config, settings), slot, actor=slot.actor,
                      printer=printer, progress=_echo)
    try:
        cycle.check(label=with_label, product=product_id)  # a wrong port, printer or finalize file fails here,
        # before a claim ID is issued
    except StepFailed as exc:
        click.echo(terminal.escape(f"FAIL at {exc.step}: {exc.reason}"))
        raise click.exceptions.Exit(1) from exc
    device = cycle.issue(station.store, product_id, serial)
    click.echo(f"[{slot.name}] issued {device.display} for {product_id}" + (f" (serial {serial})" if serial else ""))
    verdict = cycle.run(station.store, device.uci, label=with_label)
    click.echo(terminal.escape(verdict.summary()))
    if not verdict.passed:
        raise click.exceptions.Exit(1)


@rig.command("adopt")
@click.option("--port", default=None, help="Serial port: /dev/ttyUSB0, COM3, socket://host:port, rfc2217://...")
@click.option("--slot", "slot_name", default=None, help="A slot of station.json5 (its port, line and login).")
@click.option("--baud", type=int, default=None, help="Baud rate [default: the slot's, else 115200].")
@click.option("--user", default=None, help="Console user [default: the slot's, else root].")
@click.option("--printer", default=None, help="Label printer from station.json5 [default: label_printer].")
@pass_station
def adopt_command(station: Station, port: str | None, slot_name: str | None, baud: int | None, user: str | None,
                  printer: str | None) -> None:
    """Record the claim ID that the unit's agent made itself (read from its device.json5 over the console) and
    print its label; its product must allow agent_ids in station.json5."""
    settings, slot = _settings(station, slot_name, port, baud, user, None)
    adopted = adopt(station.store, station.config, settings, slot, printer=printer)
    click.echo(f"[{slot.name}] adopted {adopted.device.display} of {adopted.device.product}; label printed on "
               f"{adopted.printed.printer} ({adopted.printed.where})")
