"""The fast mask choice makes exactly the symbol qrcode makes, and payloads stay alphanumeric."""

from __future__ import annotations

import pytest
import qrcode
from qrcode import util

from station.core import uci
from station.core.errors import Invalid
from station.labels import qr

LONG_URL = "https://claims.example.com/products/blank/devices/{id}/claim/0123456789/ABCDEFGHIJ/KLMNOPQRST/UVWXYZ"


def reference(payload: str, ecc: str) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=qr.ECC_LEVELS[ecc], border=0)
    code.add_data(util.QRData(payload, mode=util.MODE_ALPHA_NUM))
    code.make()
    return code.modules


@pytest.mark.parametrize("ecc", qr.ECC_LEVELS)
@pytest.mark.parametrize("bits,url", [(50, None), (80, None), (120, None), (80, "https://example.com/claim/{id}"),
                                      (320, LONG_URL), (120, LONG_URL + "/" + "A" * 120)])
def test_symbol_is_the_one_qrcode_makes(bits: int, url: str | None, ecc: str) -> None:
    for _ in range(8):
        payload = uci.qr_payload(uci.generate(bits), url)
        assert [list(row) for row in qr.symbol(payload, ecc).rows] == reference(payload, ecc)


def test_long_payloads_reach_versions_with_version_information() -> None:
    payload = uci.qr_payload(uci.generate(120), LONG_URL + "/" + "A" * 120)
    assert qr.symbol(payload, "H").version >= 7


def test_version_for_matches_the_symbol() -> None:
    for length in (10, 16, 20, 38, 61, 90, 200):
        assert qr.symbol("A" * length, "M").version == qr.version_for(length, "M")


def test_an_80_bit_id_is_a_version_1_code() -> None:
    assert qr.symbol(uci.generate(80), "M").version == 1


@pytest.mark.parametrize("payload", ["lower-case", "HTTPS://EXAMPLE.COM/?ID=1", "TILDE~", "CHECK="])
def test_payloads_outside_alphanumeric_mode_are_refused(payload: str) -> None:
    with pytest.raises(Invalid, match="alphanumeric"):
        qr.symbol(payload, "M")
