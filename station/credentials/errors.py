"""The credentials' refusals: each a StationError whose message names what is wrong and what to do."""

from __future__ import annotations

from ..core.errors import Conflict, Forbidden, Invalid, NotFound


class CsrRefused(Invalid):
    """A unit's certificate signing request the CA will not sign (bad signature, wrong subject, weak key)."""


class NoAuthority(NotFound):
    """The data directory has no CA yet."""


class WrongPassphrase(Forbidden):
    """The CA key's passphrase is missing or wrong."""


class AuthorityUnusable(Conflict):
    """The CA exists but cannot sign: expired, not yet valid, or not a CA at all."""
