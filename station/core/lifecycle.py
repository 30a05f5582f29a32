"""The device life cycle (DESIGN.md section 4): the one place that decides which state changes are allowed."""

from __future__ import annotations

from .errors import Conflict, Invalid

STATES = ("issued", "labeled", "flashed", "registered", "claimed")
VOID = "void"
ALL_STATES = STATES + (VOID,)


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
