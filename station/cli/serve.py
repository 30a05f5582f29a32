"""``station serve``: the HTTP service and the operator pages."""

from __future__ import annotations

import click

from .base import Station, pass_station


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Add a demo product, file printer, simulated unit and operator account.")
@pass_station
def serve(station: Station, host: str, port: int, demo: bool) -> None:
    """Run the station's HTTP service and operator pages (port 0 takes a free port, named in the log)."""
    from ..serve.server import serve as serve_http

    if not demo:
        serve_http(station.config, host, port, on_ready=lambda url: click.echo(
            f"station: open {url}/ (data in {station.config.data_dir}); Ctrl-C stops it", err=True))
        return
    from ..web.demo import OPERATOR, Demo

    the_demo = Demo(station.config)

    def ready(url: str) -> None:
        the_demo.point_at(url)
        click.echo(f"demo: open {url}/ and sign in as {OPERATOR} with password {the_demo.password}", err=True)

    try:
        serve_http(station.config, host, port, on_ready=ready)
    finally:
        the_demo.stop()
