"""station.json5 as config.py reads it: every key is known there, checked at load, and a typo is refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from station import config as config_mod
from station.core import fields
from station.core.errors import Invalid


def load(tmp_path: Path, text: str) -> config_mod.Config:
    (tmp_path / config_mod.CONFIG_NAME).write_text(text, encoding="utf-8")
    return config_mod.load(tmp_path)


def test_without_a_file_every_key_has_its_default(tmp_path: Path) -> None:
    config = config_mod.load(tmp_path)
    assert {key: config.get(key) for key in config_mod.KEYS} == {k: v.default for k, v in config_mod.KEYS.items()}
    with pytest.raises(KeyError):
        config.get("no_such_setting")  # asking for a key outside the list is a programming error


def test_values_are_what_the_station_uses(tmp_path: Path) -> None:
    config = load(tmp_path, '{client_networks: ["10.20.0.0/16"], hardware_keys: ["mac"], database_timeout: 2, '
                            'secret_iterations: 1000, printers: {a: {type: "file", path: "x"}}}')
    assert config.get("client_networks") == (ipaddress.ip_network("10.20.0.0/16"),)
    assert config.get("hardware_keys") == ("mac",)
    assert config.database_timeout == 2.0 and config.get("secret_iterations") == 1000
    assert config.get("printers") == {"a": {"type": "file", "path": "x"}} and config.get("slots") == {}
    assert config.station == fields.host_station() and load(tmp_path, "{name: 'line-2.hall_B'}").station == "line-2.hall_B"


@pytest.mark.parametrize("text,message", [
    ("{hardware_key: ['serial']}", "'hardware_key' in "),
    ("{hardware_key: ['serial']}", "did you mean 'hardware_keys'?"),
    ("{colour: 'red'}", "known keys: hardware_keys, client_networks"),
    ("{printers: ['zebra']}", "printers in "),
    ("{rig: 'fast'}", "rig in "),
    ("{label_printer: ''}", "label_printer in "),
    ("{secret_iterations: 0}", "secret_iterations in "),
    ("{secret_iterations: 2.5}", "whole number from 1 to 1,000,000"),
    ("{database_timeout: true}", "database_timeout in "),
    ("{client_networks: ['10.0.0.1/8']}", "client_networks in "),
    ("{name: 'line 2'}", "name in "),
    ("{name: '-line'}", "must be 1 to 63 letters, digits"),
    ("{name: ''}", "must be 1 to 63 letters, digits"),
    ("{name: 7}", "must be 1 to 63 letters, digits"),
    ("{name: '" + "x" * 64 + "'}", "must be 1 to 63 letters, digits"),
])
def test_a_bad_or_unknown_key_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        load(tmp_path, text)
    assert message in str(refused.value) and str(tmp_path / config_mod.CONFIG_NAME) in str(refused.value)


def test_a_product_setting_overrides_the_stations_for_its_product_only(tmp_path: Path) -> None:
    config = load(tmp_path, '{agent_ids: false, factory_printer: {"10.20.1.0/24": "fixture-1", "10.20.2.0/24": "b"}, '
                            'products: {P1: {agent_ids: true, registration_upstream: "http://127.0.0.1:9/api/", '
                            'finalize: {remove: ["/var/lib/ioto/provision.json5"]}}}}')
    assert config.for_product("P1", "agent_ids") is True and config.for_product("P2", "agent_ids") is False
    assert config.for_product("P1", "registration_upstream") == "http://127.0.0.1:9/api"
    assert config.for_product("P2", "registration_upstream") is None
    assert config.for_product("P1", "finalize") == {"write": {}, "remove": ("/var/lib/ioto/provision.json5",)}
    assert config.for_product("P2", "factory_printer") == (
        (ipaddress.ip_network("10.20.1.0/24"), "fixture-1"), (ipaddress.ip_network("10.20.2.0/24"), "b"))
    with pytest.raises(KeyError):
        config.for_product("P1", "hardware_keys")  # not a product setting: a programming error


@pytest.mark.parametrize("text,message", [
    ("{products: {P1: {hardware_keys: ['mac']}}}", "'hardware_keys' of product P1"),
    ("{products: {'no spaces': {agent_ids: true}}}", "a product ID in products"),
    ("{products: {P1: {agent_ids: 'yes'}}}", "agent_ids of product P1 in "),
    ("{products: ['P1']}", "must map product IDs"),
    ("{registration_upstream: 'ftp://builder'}", "http:// or https:// URL"),
    ("{registration_timeout: 0.5e3}", "registration_timeout in "),
    ("{factory_printer: {'10.0.0.1/8': 'a'}}", "factory_printer in "),
    ("{factory_printer: {'10.0.0.0/8': ''}}", "CIDR blocks to printer names"),
    ("{finalize: {remove: ['relative/path']}}", "absolute paths on the unit"),
    ("{finalize: {write: {'/etc/ioto/ioto.json5': 3}}}", "files of the data directory"),
    ("{finalize: {delete: ['/x']}}", "finalize in "),
    ("{finalize: {}}", "names nothing to write or remove"),
])
def test_a_bad_product_or_factory_setting_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        load(tmp_path, text)
    assert message in str(refused.value)
