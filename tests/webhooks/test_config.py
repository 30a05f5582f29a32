"""Bad webhook configuration stops `station serve` with one line naming the entry and what to write, and
never repeats a secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from station import config as config_mod
from station.core.errors import Invalid
from tests.web.conftest import STATION, prepare

SECRET = "s3cret-of-the-tests-0123456789"
GOOD = {"name": "erp", "url": "http://127.0.0.1:9/hook", "kinds": ["registered"], "secret": SECRET}


def write(data_dir: Path, webhooks: Any) -> None:
    (data_dir / "station.json5").write_text(json.dumps({"webhooks": webhooks}))


@pytest.mark.parametrize("webhooks,message", [
    ([{**GOOD, "kinds": ["registered", "shipped"]}], "'shipped' is not an event kind"),
    ([{**GOOD, "url": "ftp://erp.example.com/in"}], "url must be an http:// or https:// address"),
    ([{key: value for key, value in GOOD.items() if key != "secret"}], "secret must be text of at least 16"),
    ([GOOD, {**GOOD, "url": "https://other.example.com/"}], "the name 'erp' is used by 2 endpoints"),
])
def test_a_bad_webhook_stops_serve_with_one_line(tmp_path: Path, webhooks: Any, message: str) -> None:
    prepare(tmp_path)
    write(tmp_path, webhooks)
    done = subprocess.run([*STATION, "--data-dir", str(tmp_path), "serve", "--port", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert message in last and "webhooks" in last, done.stderr
    assert SECRET not in done.stderr


@pytest.mark.parametrize("entry,message", [
    ({**GOOD, "kinds": ["registred"]}, "did you mean 'registered'?"),
    ({**GOOD, "kinds": []}, "kinds must be a list of event kinds"),
    ({**GOOD, "url": "https://user:" + SECRET + "@erp.example.com/"}, "must not carry a user name or password"),
    ({**GOOD, "url": "http:///no-host"}, "with a host"),
    ({**GOOD, "url": "http://erp.example.com:port/"}, "with a host"),
    ({**GOOD, "secret": "short"}, "at least 16 characters"),
    ({**GOOD, "secret": 12345678901234567890}, "at least 16 characters"),
    ({**GOOD, "timeout": 0}, "timeout must be a number of seconds from 0.5"),
    ({**GOOD, "from": "yesterday"}, "from must be \"now\""),
    ({**GOOD, "concurrency": 0}, "concurrency must be a whole number of deliveries at once from 1 to 16"),
    ({**GOOD, "concurrency": 17}, "concurrency must be a whole number"),
    ({**GOOD, "concurrency": 2.5}, "concurrency must be a whole number"),
    ({**GOOD, "concurrency": True}, "concurrency must be a whole number"),
    ({**GOOD, "secrte": SECRET}, "did you mean 'secret'?"),
    ({**GOOD, "name": "has space"}, "name must be 1 to 63 letters"),
    ("erp", "must be an object"),
])
def test_each_field_is_checked_without_showing_the_secret(tmp_path: Path, entry: Any, message: str) -> None:
    write(tmp_path, [entry])
    with pytest.raises(Invalid) as caught:
        config_mod.load(tmp_path)
    assert message in str(caught.value) and "entry 1" in str(caught.value)
    assert SECRET not in str(caught.value) and "12345678901234567890" not in str(caught.value)


def test_a_good_list_reads_with_defaults_and_hides_the_secret_in_repr(tmp_path: Path) -> None:
    write(tmp_path, [GOOD, {**GOOD, "name": "cloud", "kinds": ["claimed", "released", "claimed"], "timeout": 2,
                            "from": "start", "concurrency": 1}])
    erp, cloud = config_mod.load(tmp_path).get("webhooks")
    assert (erp.name, erp.kinds, erp.timeout, erp.start, erp.concurrency) == ("erp", ("registered",), 10.0, "now", 4)
    assert (cloud.kinds, cloud.timeout, cloud.start, cloud.concurrency) == (("claimed", "released"), 2.0, "start", 1)
    assert SECRET not in repr(erp) and erp.secret == SECRET
    assert config_mod.load(tmp_path / "none").get("webhooks") == ()
