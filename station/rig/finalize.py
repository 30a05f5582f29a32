"""The finalize steps: what makes a unit ship-ready once the station has seen it register (DESIGN.md section 3,
its last point; the product's ``finalize`` in station.json5).

The agent is stopped first (``rig.stop``: a running agent would write its provision and database again). Each
station file is written with the checked transfer (framing, checksums, retries, readback), each removed path
goes with ``rm -rf``, then ``sync``; a last readback proves it all: device.json5 still has the SHA-256 the
flash wrote, every written file has its own, and no removed path exists (``test -e``). The station files are
read before the cycle touches the unit (``read``), so that a configuration mistake never half-finalizes one.
Every failure is a ``StepFailed`` at step ``finalize``; events carry paths and SHA-256s, never contents.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import StepFailed
from .settings import FinalizeSettings, RigSettings
from .shell import Shell
from .transfer import Transfer, Written

STEP = "finalize"

# step, message, done, total (as flash.Cycle._report takes them)
Report = Callable[[str, str, "int | None", "int | None"], None]


@dataclass(frozen=True)
class Plan:
    """A product's finalize steps with its station files read: (unit path, station file, content) to write,
    unit paths to remove."""

    writes: tuple[tuple[str, Path, bytes], ...]
    remove: tuple[str, ...]


def read(settings: FinalizeSettings) -> Plan:
    """The plan, or a FAIL at this step naming the station file that cannot be read and the setting naming it."""
    writes = []
    for path, source in settings.write:
        try:
            writes.append((path, source, source.read_bytes()))
        except OSError as exc:
            raise StepFailed(STEP, f"cannot read {source} ({exc.strerror}), the station file that {settings.key} in "
                                   f"station.json5 writes to {path}: put the file there or correct {settings.key}") from None
    return Plan(tuple(writes), settings.remove)


class Finalize:
    """The finalize steps of one unit, on a shell where its device file was written and proven (``device``)."""

    def __init__(self, shell: Shell, rig: RigSettings, plan: Plan, device: Written, report: Report) -> None:
        self.shell = shell
        self.rig = rig
        self.plan = plan
        self.device = device
        self.report = report
        self.doing = ""

    def run(self) -> dict[str, object]:
        """Stop the agent, write, remove, sync and prove; what was done, for the ``finalized`` event."""
        try:
            return self._run()
        except StepFailed as exc:
            if exc.step == STEP:
                raise
            # A failure inside a transfer: the same kind (a lost port stays PortLost), at this step.
            raise type(exc)(STEP, f"{self.doing}: {exc.step}: {exc.reason}") from None

    def _say(self, message: str, done: int | None = None, total: int | None = None) -> None:
        self.report(STEP, message, done, total)

    def _check(self, command: str, what: str) -> None:
        self.doing = what
        reply = self.shell.run(command, STEP)
        if reply.status != 0:
            said = " / ".join(reply.lines[-3:]) or "no message"
            raise StepFailed(STEP, f"{what}: `{command}` exited with status {reply.status}: {said}")

    def _run(self) -> dict[str, object]:
        shell, rig = self.shell, self.rig
        self._say(f"stopping the agent: {rig.stop}")
        self._check(rig.stop, "stopping the agent (rig.stop in station.json5)")
        transfer = Transfer(shell, chunk=rig.chunk, retries=rig.retries, tmp_dir=rig.tmp_dir,
                            report=lambda step, message, done, total: self._say(f"{self.doing}: {message}", done, total))
        written = []
        for path, source, data in self.plan.writes:
            self.doing = f"writing {source.name} to {path}"
            done = transfer.write(path, data)
            written.append({"path": path, "source": str(source), "bytes": done.size, "sha256": done.sha256})
        for path in self.plan.remove:
            self._say(f"removing {path}")
            self._check(f"rm -rf {shlex.quote(path)}", f"removing {path}")
        self._check("sync", "syncing the unit's file systems")
        self._say("reading back what makes the unit ship-ready")
        self.doing = "proving device.json5 is intact"
        transfer.prove(self.device.path, self.device.sha256, STEP)
        for entry in written:
            self.doing = f"proving {entry['path']}"
            transfer.prove(str(entry["path"]), str(entry["sha256"]), STEP)
        for path in self.plan.remove:
            self.doing = f"proving {path} is gone"
            reply = shell.run(f"test -e {shlex.quote(path)}", STEP)
            if reply.status == 0:
                raise StepFailed(STEP, f"{path} is still on the unit after `rm -rf`")
            if reply.status != 1:
                said = reply.lines[-1] if reply.lines else "no message"
                raise StepFailed(STEP, f"`test -e {path}` exited with status {reply.status}: {said}")
        self._say(f"{len(written)} written, {len(self.plan.remove)} removed, synced and read back")
        return {"written": written, "removed": list(self.plan.remove), "device_sha256": self.device.sha256}
