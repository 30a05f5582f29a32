"""The device life cycle (DESIGN.md section 4): the one place that decides which state changes are allowed."""

from __future__ import annotations

from enum import StrEnum

from .errors import Conflict, Invalid

STATES = ("issued", "labeled", "flashed", "registered", "claimed")
VOID = "void"
ALL_STATES = STATES + (VOID,)


class Kind(StrEnum):
    """Every kind of event the station records: the one list, which the event table refuses to go beyond
    (db/events.py), so that what one part writes is what another looks for."""

    # a device's life
    ISSUED = "issued"
    ISSUED_REPEAT = "issued-repeat"  # the same unit (hardware key) or request (Idempotency-Key) again: its UCI again
    LABELED = "labeled"
    FLASHED = "flashed"
    REGISTERED = "registered"
    CLAIMED = "claimed"
    RELEASED = "released"  # a claimed unit back to registered (resale, a support case), with a reason
    VOID = "void"
    ADOPTED = "adopted"  # a claim ID the unit's agent made itself, recorded as a new device (origin agent)
    REFUSED = "refused"  # a request the station turned down (details say what was attempted, and why)
    KEY_RELEASED = "key-released"  # a void device's serial or hardware key, freed for a new claim ID
    BATCH_ISSUED = "batch-issued"
    BATCH_VOIDED = "batch-voided"
    BATCH_IMPORTED = "batch-imported"  # claim IDs made elsewhere, stored as one batch (details: the source)
    # labels
    PRINTED = "printed"
    REPRINTED = "reprinted"
    PRINT_FAILED = "print-failed"
    # the rig's flash cycle, and the line's verdict on a unit
    FLASH_STARTED = "flash-started"
    FLASH_FAILED = "flash-failed"
    FLASH_CANCELLED = "flash-cancelled"
    BOOT_TRIGGERED = "boot-triggered"
    TRIGGER_FAILED = "trigger-failed"
    REGISTRATION_CONFIRMED = "registration-confirmed"
    REGISTRATION_REFUSED = "registration-refused"
    REGISTRATION_TIMEOUT = "registration-timeout"
    FINALIZED = "finalized"  # the product's finalize steps written, removed, synced and proved by readback
    FINALIZE_FAILED = "finalize-failed"
    LINE_PASS = "line-pass"
    LINE_FAIL = "line-fail"
    # credentials (DESIGN.md section 4a): details carry fingerprints and serials, never a secret or a key
    SECRET_MADE = "secret-made"  # a unit's first secret, verified on the unit
    SECRET_REGENERATED = "secret-regenerated"  # a new one replaced the hash: the old stops working at the next export
    SECRET_REVOKED = "secret-revoked"
    CERTIFICATE_ISSUED = "certificate-issued"  # details: serial, fingerprint, key origin, validity
    CERTIFICATE_REVOKED = "certificate-revoked"
    CA_CREATED = "ca-created"
    CA_IMPORTED = "ca-imported"
    # the station itself
    PRODUCT_ADDED = "product-added"
    PRODUCT_ENABLED = "product-enabled"
    PRODUCT_DISABLED = "product-disabled"
    PRODUCT_OWNER = "product-owner"  # the Ioto account and cloud a product's units are pre-claimed for
    PRODUCT_CLAIMING = "product-claiming"  # whether a product's units may be claimed before they register
    PRODUCT_CREDENTIALS = "product-credentials"  # the credential settings of a product changed (details: the new ones)
    TOKEN_CREATED = "token-created"
    TOKEN_REVOKED = "token-revoked"
    USER_ADDED = "user-added"
    USER_ENABLED = "user-enabled"
    USER_DISABLED = "user-disabled"
    PASSWORD_CHANGED = "password-changed"
    SIGN_IN_REFUSED = "sign-in-refused"


class TransitionRefused(Conflict):
    """A change of state the life cycle does not allow."""


def check_state(state: str) -> str:
    """Refuse a state name that does not exist, naming the ones that do."""
    if state not in ALL_STATES:
        raise Invalid(f"unknown state {state!r}: states are {', '.join(ALL_STATES)}")
    return state


def advance(current: str, target: str) -> str:
    """The state after an event that reaches ``target``: states only move forward.

    A repeat (reprint, re-flash, repeated registration) reaching a state the device has passed keeps the
    current state; nothing moves a void device, and void is reached through ``void`` only.
    """
    check_state(target)
    if current == VOID:
        raise TransitionRefused("the device is void: its claim ID can never be used again")
    if target == VOID:
        raise Invalid("use void() to void a device, with a reason")
    return max(current, target, key=STATES.index)


def void(current: str) -> str:
    """Voiding is allowed from every state but void itself."""
    if current == VOID:
        raise TransitionRefused("the device is already void")
    return VOID


def claim(current: str, before_registration: bool) -> str:
    """An end user's claim: from ``registered``, or from any state in the factory where the product allows
    claiming before registration (pre-claimed units); a claimed unit is claimed already."""
    if current == VOID:
        raise TransitionRefused("the device is void: its claim ID can never be used again")
    if current == "claimed":
        raise TransitionRefused("the device is claimed already")
    if current != "registered" and not before_registration:
        raise TransitionRefused("the unit has not registered yet: it can be claimed once it has started and "
                                "reached the station (or allow claiming before registration for its product)")
    return "claimed"


def release(current: str) -> str:
    """The one way back (DESIGN.md section 4): a claimed unit returns to ``registered``, for resale or support."""
    if current != "claimed":
        raise TransitionRefused(f"only a claimed unit can be released; this one is {current}")
    return "registered"
