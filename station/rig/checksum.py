"""POSIX ``cksum`` (CRC-32, polynomial 0x04C11DB7, length appended): the per-chunk check every shell has.

The rig checks each chunk it writes with it, as esptool checks each block; the simulator's ``cksum`` uses it too.
"""

from __future__ import annotations


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_TABLE = _table()


def cksum(data: bytes) -> int:
    """The CRC that ``cksum`` prints for ``data`` (its second field is simply ``len(data)``)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[(crc >> 24) ^ byte]
    length = len(data)
    while length:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[(crc >> 24) ^ (length & 0xFF)]
        length >>= 8
    return ~crc & 0xFFFFFFFF
