"""A simulated Linux unit running the Ioto agent, on the serial console of a pseudo-terminal.

The unit boots (kernel-like messages), shows a login prompt, asks for a password when it has one, and
gives a shell with echo (``stty -echo`` turns it off) that runs the command forms of ``sh.py``. Its restart
command (or ``reboot``) starts the agent's first boot, which registers with the station over HTTP. In factory
mode (``serialize="factory"``) the agent also starts at power-on, as the service does on a real unit, and a
device.json5 without ``id`` makes it ask the station's ``/ioto/serialize`` for one first (``agent.py``). Its
stop command stops the agent and waits (bounded) for it to end, as ``systemctl stop`` does.

Timing is real: bytes reach the unit and leave it at the configured baud rate (10 bits a byte), each way on
its own, as on a UART. Faults (``faults.py``) are injected where a real unit would suffer them.

Usable as a library (``with Unit(...) as unit: unit.path``) and as ``station simulate``.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import shlex
import threading
import time
from collections.abc import Iterable
from typing import Any

from ..core.errors import Invalid, Unavailable
from .agent import DATABASE, first_boot
from .faults import Faults
from .fs import MemoryFS
from .openssl import OpenSSL
from .sh import Halt, Incomplete, Result, Shell

log = logging.getLogger("station.simulator")

BOOT = (
    "[    0.000000] Booting Linux on physical CPU 0x0",
    "[    0.000000] Linux version 6.1.0-ioto (build@ioto) (gcc 12.2.0) #1 SMP PREEMPT",
    "[    0.412000] Serial: 8250/16550 driver, 4 ports, IRQ sharing enabled",
    "[    0.431000] printk: console [ttyS0] enabled",
    "[    1.204000] EXT4-fs (mmcblk0p2): mounted filesystem with ordered data mode",
    "[    2.010000] systemd[1]: Started Serial Getty on ttyS0.",
    "",
    "Ioto simulated unit 1.0 {hostname} ttyS0",
    "",
)
NOISE = b"\x00\xfe\xff\x1b[0;3\x7f~~\x15\xaa"
KERNEL_LINE = "[  {0:4d}.{1:06d}] usb 1-1: device descriptor read/64, error -71\r\n"


class Unit:
    """One simulated unit on one pseudo-terminal; ``start`` returns the path a serial port opens."""

    def __init__(self, *, station: str | None = None, baud: int = 115200, faults: Iterable[str] = (),
                 user: str = "root", password: str | None = None, hostname: str = "ioto-sim",
                 device_json_path: str = "/etc/ioto/device.json5", trigger: str = "systemctl restart ioto",
                 boot_pause: float = 0.01, serialize: str | None = None, save_id: bool = False,
                 device_json: bytes | None = None, stop: str = "systemctl stop ioto") -> None:
        """``serialize="factory"``: the agent asks the station for its ID; ``save_id``: it was started with
        --id, --product, --account and --cloud, so it writes the ID to device.json5; ``device_json``: what
        device.json5 holds at power-on (none by default: the rig writes it)."""
        if serialize not in (None, "factory"):
            raise Invalid(f"the simulated agent serializes only in factory mode (serialize='factory'), not {serialize!r}")
        if serialize and not station:
            raise Invalid("a unit in factory mode needs the station's URL, where it asks for its ID")
        self.builder = station.rstrip("/") + "/api" if station else None
        self.serialize = station.rstrip("/") + "/ioto/serialize" if serialize and station else None
        self.save_id = save_id
        self.baud = baud
        self.faults = Faults(faults)
        self.user = user
        self.password = password
        self.hostname = hostname
        self.device_json_path = device_json_path
        self.trigger = shlex.split(trigger)
        self.stop_command = shlex.split(stop)
        self.boot_pause = boot_pause
        self.fs = MemoryFS()
        self.registrations: list[dict[str, Any]] = []
        self.agent_log: list[str] = []  # the agent's log lines, as it printed them on the console
        self.state = "off"
        self.path = ""
        self._piece = max(1, baud // 10_000)  # bytes per millisecond of wire time
        self._out: queue.Queue[bytes] = queue.Queue()
        self._stop = threading.Event()
        self._run = threading.Event()  # set to stop the agent that runs (a restart, a reboot, power off)
        self._run_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._master = self._slave = -1
        self._line = b""
        self._pending = ""
        self._last = 0
        self._echo = True
        self._chunk_lines = 0
        self._noise = 0
        self._login_user = ""
        self._fd_lock = threading.Lock()
        self.shell = Shell(self.fs, self._print, self._commands(), readback_hook=self._readback_fault)
        if self.faults.active("no-openssl"):
            del self.shell.commands["openssl"]
        self.fs.on_write = self._storage_fault
        if self.faults.active("disk-full"):
            self.fs.capacity = int(self.faults.seconds("disk-full"))
        if self.faults.active("immutable"):
            self.fs.immutable.add(DATABASE)
        if device_json is not None:
            self.fs.write(self.device_json_path, device_json)

    # --- life ---------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Power the unit on: open the pseudo-terminal, start its threads, boot. Returns the port's path."""
        if not hasattr(os, "openpty"):
            raise Unavailable("the simulated unit needs pseudo-terminals (Linux or macOS); run it on such a machine "
                              "and reach it with socket:// or rfc2217:// through a serial server")
        import tty  # POSIX only: imported here so that the station's CLI loads on Windows too

        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # the unit's side is a raw line: nothing of its own echoes back
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._writer_thread = self._spawn(self._writer)
        self._spawn(self._reader)
        self._spawn(self._boot, self.serialize is not None)
        log.info("unit started", extra={"path": self.path, "baud": self.baud})
        return self.path

    def _spawn(self, target: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=f"unit-{target.__name__}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def stop(self) -> None:
        """Power off: stop the threads (bounded) and remove the pseudo-terminal."""
        self._stop.set()
        self._run.set()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(5)
        self._close()

    def _close(self) -> None:
        """Close the pseudo-terminal once no thread uses it (a closed descriptor's number is soon reused)."""
        with self._fd_lock:
            for fd in (self._master, self._slave):
                if fd >= 0:
                    os.close(fd)
            self._master = self._slave = -1

    def __enter__(self) -> Unit:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the wire -----------------------------------------------------------------------------------------

    def _pace(self, clock: float, size: int) -> float:
        """Sleep until ``size`` bytes starting at ``clock`` would have crossed the wire; the new clock."""
        now = time.monotonic()
        start = clock if now - clock < 0.002 else now  # keep the clock through small oversleeps, not idle gaps
        end = start + size * 10 / self.baud
        if end > now:
            time.sleep(end - now)
        return end

    def _reader(self) -> None:
        clock = 0.0
        while not self._stop.is_set() and self.state != "gone":
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                data = os.read(self._master, 4096) if ready else b""
            except (OSError, ValueError):
                return
            for i in range(0, len(data), self._piece):
                piece = data[i : i + self._piece]
                clock = self._pace(clock, len(piece))
                self._receive(piece)
        if self.state == "gone":  # a disconnect: the port vanishes once the writer has let go of it
            self._writer_thread.join(5)
            self._close()

    def _writer(self) -> None:
        clock = 0.0
        while not self._stop.is_set() and self.state != "gone":
            try:
                data = self._out.get(timeout=0.05)
            except queue.Empty:
                continue
            for i in range(0, len(data), self._piece):
                piece = data[i : i + self._piece]
                clock = self._pace(clock, len(piece))
                self._send(piece)

    def _send(self, data: bytes) -> None:
        """Put bytes on the wire; with nobody reading for a while, they are lost, as on a UART."""
        deadline = time.monotonic() + 1.0
        while data and time.monotonic() < deadline and self.state != "gone":
            try:
                data = data[os.write(self._master, data):]
            except BlockingIOError:
                select.select([], [self._master], [], 0.05)
            except (OSError, ValueError):
                return

    def _print(self, data: bytes | str) -> None:
        """Console output: newlines become CR LF, and kernel messages may slip in between lines."""
        if isinstance(data, str):
            data = data.encode()
        if not data or self.state in ("hung", "gone"):
            return
        self._out.put(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        if data.endswith(b"\n") and self.faults.take("kernel-log"):
            self._noise += 1
            self._out.put(KERNEL_LINE.format(30 + self._noise, 123456 * self._noise % 1_000_000).encode())

    # --- boot and login -----------------------------------------------------------------------------------

    def _boot(self, then_agent: bool = False) -> None:
        self.state = "boot"
        garbled = self.faults.active("garbled-boot")
        for line in BOOT:
            if self._stop.wait(self.boot_pause):
                return
            if garbled:
                self._out.put(NOISE + os.urandom(6) + b"\r\n[    1.3] mmc0: err")
            self._print(line.format(hostname=self.hostname) + "\n")
        if garbled:
            self._out.put(NOISE)
        self._echo = True
        self.state = "login"
        self._print(f"{self.hostname} login: ")
        if then_agent:
            self._spawn(self._agent)

    def _prompt(self) -> None:
        self._print(f"{self.user}@{self.hostname}:~# " if self.user == "root" else f"{self.hostname}:~$ ")

    def _login(self, text: str) -> None:
        if self.state == "login":
            if not text.strip():
                self._print(f"{self.hostname} login: ")  # as getty does for an empty line
                return
            self._login_user = text
            if self.password is not None:
                self.state = "password"
                self._print("Password: ")
                return
            ok = text == self.user
        else:
            ok = self._login_user == self.user and text == self.password
        if not ok:
            time.sleep(0.3)
            self.state = "login"
            self._print(f"\nLogin incorrect\n{self.hostname} login: ")
            return
        self.state = "shell"
        self._print("\nWelcome to the Ioto simulated unit.\n\n")
        self._prompt()

    # --- input --------------------------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        """The line discipline: echo, line editing, ^C; complete lines go to login or the shell."""
        echo = b""
        for byte in data:
            last, self._last = self._last, byte
            if self.state not in ("login", "password", "shell"):
                continue
            shown = self._echo and self.state != "password"
            if byte == 3:
                self._line, self._pending = b"", ""
                self._print(echo + b"^C\n")
                echo = b""
                if self.state == "shell":
                    self._prompt()
            elif byte in (8, 127):
                if self._line:
                    self._line = self._line[:-1]
                    echo += b"\b \b" if shown else b""
            elif byte in (10, 13):
                if byte == 10 and last == 13:
                    continue
                self._print(echo + (b"\n" if shown else b""))
                echo = b""
                line, self._line = self._line.decode("utf-8", "replace"), b""
                if self.state == "shell":
                    self._command(line)
                else:
                    self._login(line)
            else:
                self._line += bytes([byte])
                echo += bytes([byte]) if shown else b""
        self._print(echo)

    def _command(self, line: str) -> None:
        if "base64 -d" in line:
            self._chunk_lines += 1
            if self._chunk_lines >= 2:
                line = self._transfer_fault(line)
                if self.state != "shell":
                    return
        source = self._pending + line
        try:
            self.shell.execute(source)
        except Incomplete:
            self._pending = source + "\n"
            self._print("> ")
            return
        self._pending = ""
        if self.state == "shell":
            self._prompt()

    def _transfer_fault(self, line: str) -> str:
        if self.faults.take("disconnect"):
            log.info("fault: disconnect", extra={"path": self.path})
            self.state = "gone"
        elif self.faults.take("hang"):
            log.info("fault: hang", extra={"path": self.path})
            self.state = "hung"
        else:
            payload = max(line.replace("|", " ").replace(";", " ").split(), key=len)
            middle = line.index(payload) + len(payload) // 2
            if self.faults.take("flip"):
                line = line[:middle] + chr(ord(line[middle]) ^ 0x20) + line[middle + 1 :]
            elif self.faults.take("drop"):
                line = line[:middle] + line[middle + 1 :]
        return line

    def _storage_fault(self, path: str, data: bytes) -> bytes:
        """A whole certificate written to a file may be stored with one character changed (a flash fault)."""
        if b"-----BEGIN CERTIFICATE-----" in data and b"-----END CERTIFICATE-----" in data \
                and self.faults.take("cert-corrupt"):
            log.info("fault: cert-corrupt", extra={"path": path})
            middle = data.index(b"-----BEGIN CERTIFICATE-----") + 60
            return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
        return data

    def _readback_fault(self, output: bytes) -> bytes:
        if output[:1] and self.faults.take("flip-readback"):
            return (b"0" if output[:1] != b"0" else b"1") + output[1:]
        return output

    # --- commands the unit adds to the shell --------------------------------------------------------------

    def _commands(self) -> dict[str, Any]:
        commands: dict[str, Any] = {"reboot": self._reboot, self.stop_command[0]: self._restart,
                                     self.trigger[0]: self._restart, "openssl": OpenSSL(self.fs, self.faults.take)}
        if not self.faults.active("no-stty"):
            commands["stty"] = self._stty
        return commands

    def _stty(self, args: list[str], stdin: bytes) -> Result:
        if "-echo" in args:
            self._echo = False
        elif "echo" in args:
            self._echo = True
        return b"", b"", 0

    def _restart(self, args: list[str], stdin: bytes) -> Result:
        if [self.stop_command[0], *args] == self.stop_command and [self.trigger[0], *args] != self.trigger:
            with self._run_lock:
                self._run.set()
            for agent in [t for t in self._threads if t.name == "unit-_agent"]:  # as _spawn names them
                agent.join(5)
            return b"", b"", 0
        if [self.trigger[0], *args] != self.trigger:
            return b"", f"{self.trigger[0]}: {' '.join(args)}: not supported on this unit\n".encode(), 1
        self._spawn(self._agent)
        return b"", b"", 0

    def _reboot(self, args: list[str], stdin: bytes) -> Result:
        self.state = "rebooting"
        self._print("\nreboot: Restarting system\n")
        self._spawn(self._boot, True)
        raise Halt  # the shell dies with the system: the rest of the line never runs

    def _agent(self) -> None:
        """One run of the agent; starting it stops the one before, as ``systemctl restart`` does."""
        run = threading.Event()
        with self._run_lock:
            previous, self._run = self._run, run
        previous.set()
        if self._stop.is_set():
            return

        def say(line: str) -> None:
            self.agent_log.append(line)
            self._print(line + "\n")

        reply = first_boot(self.fs, self.device_json_path, self.builder, say, run,
                           delay=self.faults.seconds("slow-boot"), reachable=not self.faults.take("no-register"),
                           serialize=self.serialize, save_id=self.save_id)
        if reply is not None:
            self.registrations.append(reply)
