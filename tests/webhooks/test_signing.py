"""Signatures as receivers check them: known vectors (made with openssl dgst -sha256 -hmac), and every way a
delivery must fail to verify."""

from __future__ import annotations

import pytest

from station.webhooks import signing
from station.webhooks.signing import BadSignature

VECTORS = [  # secret, timestamp, body, hex: printf '<t>.<body>' | openssl dgst -sha256 -hmac '<secret>'
    ("whsec_0123456789abcdef", 1700000000, b'{"a":1}',
     "9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2"),
    ("another secret of the maker", 1700000001, b'{"id":"erp:7","station":"line-1"}',
     "1c2cb36d6908dbf9eab79bc3a673c29373908c50a4d809bda2b7c81494d82614"),
]


@pytest.mark.parametrize("secret,timestamp,body,hexdigest", VECTORS)
def test_known_vectors(secret: str, timestamp: int, body: bytes, hexdigest: str) -> None:
    header = signing.sign(secret, body, timestamp)
    assert header == f"t={timestamp},v1={hexdigest}"
    assert signing.verify(secret, body, header, at=timestamp + 10) == timestamp


def test_a_wrong_secret_or_a_changed_body_fails() -> None:
    secret, timestamp, body, _ = VECTORS[0]
    header = signing.sign(secret, body, timestamp)
    with pytest.raises(BadSignature, match="does not match"):
        signing.verify("whsec_0123456789abcdeX", body, header, at=timestamp)
    with pytest.raises(BadSignature, match="does not match"):
        signing.verify(secret, b'{"a":2}', header, at=timestamp)
    moved = header.replace(f"t={timestamp}", f"t={timestamp + 1}")  # the timestamp is signed too
    with pytest.raises(BadSignature, match="does not match"):
        signing.verify(secret, body, moved, at=timestamp)


def test_an_old_timestamp_is_a_replay() -> None:
    secret, timestamp, body, _ = VECTORS[0]
    header = signing.sign(secret, body, timestamp)
    with pytest.raises(BadSignature, match="replay"):
        signing.verify(secret, body, header, at=timestamp + signing.TOLERANCE + 1)
    assert signing.verify(secret, body, header, at=timestamp + signing.TOLERANCE) == timestamp


@pytest.mark.parametrize("header", ["", "v1=abc", "t=soon,v1=abc", "t=1700000000", "t=1700000000,v1=\u00e9\u00e9"])
def test_malformed_headers_fail(header: str) -> None:
    with pytest.raises(BadSignature):
        signing.verify(VECTORS[0][0], VECTORS[0][2], header, at=1700000000)


def test_any_of_several_signatures_may_match() -> None:
    """A receiver rotating its secret, or a header carrying an old and a new signature, checks each."""
    secret, timestamp, body, hexdigest = VECTORS[0]
    assert signing.verify(secret, body, f"t={timestamp},v1={'0' * 64},v1={hexdigest}", at=timestamp) == timestamp
