"""``station simulate``: a simulated unit on a pseudo-terminal, for trying the rig without hardware."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from ..simulator.faults import describe
from ..simulator.unit import Unit


@click.command()
@click.option("--station", "station_url", default="http://127.0.0.1:8080", show_default=True,
              help="The station the agent registers with (POST <URL>/api/device/register).")
@click.option("--baud", type=int, default=115200, show_default=True, help="Pace the console at this rate.")
@click.option("--fault", "faults", multiple=True, metavar="NAME[=N]", help=f"Inject a fault; repeatable. {describe()}.")
@click.option("--user", default="root", show_default=True, help="The console's login user.")
@click.option("--password", default=None, help="The console's password [default: none asked].")
@click.option("--hostname", default="ioto-sim", show_default=True)
@click.option("--device-json", "device_json_path", default="/etc/ioto/device.json5", show_default=True,
              help="Where the agent reads its device.json5.")
@click.option("--trigger", default="systemctl restart ioto", show_default=True,
              help="The command that restarts the agent (`reboot` also works).")
@click.option("--serialize", type=click.Choice(["factory"]), default=None,
              help="Factory mode: the agent starts at power-on and, while device.json5 has no id, asks "
                   "POST <URL>/ioto/serialize for one every 2 s, then registers [default: off, the rig writes the id].")
@click.option("--save-id", is_flag=True,
              help="The agent was started with --id, --product, --account and --cloud: it writes the ID it got to "
                   "device.json5 [default: the ID stays in memory and a restart asks again, as the stock agent does].")
@click.option("--device-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A device.json5 the unit holds at power-on (for --serialize factory: one without an id).")
def simulate(station_url: str, baud: int, faults: tuple[str, ...], user: str, password: str | None, hostname: str,
             device_json_path: str, trigger: str, serialize: str | None, save_id: bool,
             device_file: Path | None) -> None:
    """Run a simulated Ioto unit on a serial console (a pseudo-terminal) until Ctrl-C; prints its port."""
    done = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        done.set()

    unit = Unit(station=station_url, baud=baud, faults=faults, user=user, password=password, hostname=hostname,
                device_json_path=device_json_path, trigger=trigger, serialize=serialize, save_id=save_id,
                device_json=device_file.read_bytes() if device_file else None)
    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    with unit:
        click.echo(unit.path)
        click.echo(f"simulated unit on {unit.path} at {baud} baud, login {user}"
                   f"{' with a password' if password else ''}; registers with {station_url}; Ctrl-C stops it", err=True)
        registered = 0
        while not done.wait(0.2):  # each registration said as the unit keeps its reply
            for _ in unit.registrations[registered:]:
                registered += 1
                click.echo(f"registered with {station_url} ({registered} so far)", err=True)
        registered = len(unit.registrations)
    click.echo(f"stopped ({registered} registration{'s' if registered != 1 else ''})", err=True)

