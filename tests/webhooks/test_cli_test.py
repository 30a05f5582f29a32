"""`station webhooks test NAME`: one signed test delivery to a receiver on 127.0.0.1, which verifies it; a
receiver that fails or is gone, and an unknown endpoint, each exit 1 with one line saying what went wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import dump
from tests.web.conftest import STATION, prepare
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_delivery import configure


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STATION, "--data-dir", str(data_dir), "webhooks", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_a_test_delivery_is_signed_and_stores_nothing(tmp_path: Path, receiver: Receiver) -> None:
    prepare(tmp_path)
    configure(tmp_path, receiver)
    before = dump(tmp_path / "station.db")
    done = run(tmp_path, "test", "erp")
    assert done.returncode == 0 and "delivered a signed webhook-test event to erp" in done.stdout, done.stderr
    [delivery] = receiver.seen
    assert delivery.verified and delivery.body["event"]["kind"] == "webhook-test"
    assert delivery.id.startswith("erp:test-") and delivery.body["id"] == delivery.id
    assert dump(tmp_path / "station.db") == before  # no event, no cursor


def test_a_failing_or_missing_receiver_and_an_unknown_name_exit_1(tmp_path: Path, receiver: Receiver) -> None:
    prepare(tmp_path)
    configure(tmp_path, receiver)
    receiver.plan.append("fail")
    failed = run(tmp_path, "test", "erp")
    assert failed.returncode == 1 and "HTTP 500" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    receiver.close()
    gone = run(tmp_path, "test", "erp")
    assert gone.returncode == 1 and "cannot reach the receiver" in gone.stderr
    unknown = run(tmp_path, "test", "crm")
    assert unknown.returncode == 1 and "no webhook endpoint 'crm'" in unknown.stderr and "endpoints: erp" in unknown.stderr
