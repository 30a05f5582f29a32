"""Real PostgreSQL servers for the tests: the shared server of .ci/setup-postgres, where each parametrized test
gets a fresh database of its own, and private throwaway clusters for the hard-stop tests, which crash a server
(``pg_ctl stop -m immediate``) and must not disturb the shared one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

SHARED = os.environ.get("STATION_TEST_POSTGRES", "postgresql://station_test@127.0.0.1:5432/station_test")
# The password goes by libpq's environment, to this process and the station commands it starts: the URLs the tests
# hand around are then those the station names in its messages (it never shows a password).
os.environ.setdefault("PGPASSWORD", "station_test")
SETUP = "run `bash .ci/setup-postgres` (it installs PostgreSQL and starts the shared test server)"
TIMEOUT = 60  # seconds, at most, for any one command or connection attempt
SERVER_WAIT = 30  # seconds pg_ctl waits for a server to start or stop (less than TIMEOUT)
LOG_TAIL = 40  # lines of a server's log in a failure's message


def _connect_shared() -> psycopg.Connection[TupleRow]:
    try:
        return psycopg.connect(SHARED, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise AssertionError(f"the shared PostgreSQL test server ({_redacted(SHARED)}) cannot be reached: {exc}"
                             f"\n{SETUP}") from exc


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def fresh_database(prefix: str = "station_t") -> str:
    """A new, empty database on the shared server, with a random name: its URL (the shared credentials)."""
    name = prefix + secrets.token_hex(6)
    with _connect_shared() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlsplit(SHARED)._replace(path="/" + name).geturl()


def drop_database(url: str) -> None:
    """Drop a database of fresh_database, whoever is still connected to it; one already gone is fine."""
    name = conninfo_to_dict(url).get("dbname")
    assert isinstance(name, str) and name, f"no database named in {_redacted(url)}"
    assert name != conninfo_to_dict(SHARED).get("dbname"), f"refusing to drop the shared server's own {name}"
    with _connect_shared() as conn:
        try:  # FORCE ends the sessions of the tests' own role; it may not end autovacuum's (a superuser's process)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:  # but a plain DROP stops an autovacuum worker by itself
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def binaries() -> Path:
    """The bin folder of the newest PostgreSQL under /usr/lib/postgresql (Debian's layout)."""
    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in folder.name.split(".") if part.isdigit())

    found = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if (d / "initdb").is_file() and version(d.parent)]
    if not found:
        raise AssertionError(f"no PostgreSQL binaries (initdb) under /usr/lib/postgresql/*/bin: {SETUP}")
    return max(found, key=lambda d: version(d.parent))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A private PostgreSQL server in a folder of its own, on a free 127.0.0.1 port, its superuser ``station``
    trusted without a password. Durable as a real one (fsync stays on), so ``stop_immediate`` is a crash and the
    next ``start`` recovers from the WAL. As root, initdb and the server run as the ``postgres`` user.

    Without ``directory``, the cluster lives under a fresh ``tempfile.mkdtemp`` (readable by ``postgres``, which
    a root's pytest tmp_path is not), removed on ``__exit__``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.as_root = os.geteuid() == 0
        self._scratch: Path | None = None
        if directory is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="station-pg-"))
            if self.as_root:
                self._scratch.chmod(0o755)
            directory = self._scratch / "data"
        self.directory = directory.absolute()
        self.log = self.directory / "log"
        self.port = free_port()
        socket_path = self.directory / f".s.PGSQL.{self.port}"
        if len(os.fsencode(socket_path)) > 107:  # sun_path: the server would refuse to start
            raise AssertionError(f"the cluster's socket path is too long for a Unix socket: {socket_path}")

    def url(self, database: str = "station") -> str:
        return f"postgresql://station@127.0.0.1:{self.port}/{database}"

    def start(self) -> Cluster:
        """initdb the first time, then start the server and wait (bounded) until it takes connections."""
        bin_dir = binaries()
        if not (self.directory / "PG_VERSION").exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.as_root:
                self._run(["chown", "-R", "postgres:postgres", str(self.directory)], "chown", sudo=False)
                self._run(["test", "-w", str(self.directory)],
                          f"the postgres user cannot reach {self.directory} (a parent folder is not traversable: "
                          "give Cluster no directory, it makes one under a fresh mkdtemp)")
            self._run([str(bin_dir / "initdb"), "-D", str(self.directory), "-A", "trust", "-U", "station",
                       "--no-sync", "--encoding=UTF8", "--locale=C.UTF-8"], "initdb")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {shlex.quote(str(self.directory))}"
        try:
            self._pg_ctl("-l", str(self.log), "-o", options, "start")
        except AssertionError:
            with contextlib.suppress(AssertionError):  # a server still starting after the wait: leave none behind
                self._pg_ctl("-m", "immediate", "stop")
            raise
        return self

    def stop_immediate(self) -> None:
        """A crash: every server process quits at once, with no checkpoint (the next start replays the WAL)."""
        self._pg_ctl("-m", "immediate", "stop")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def create_database(self, name: str = "station") -> str:
        """A new database on the cluster: its URL."""
        try:
            with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise AssertionError(f"CREATE DATABASE {name} on {self.url('postgres')}: {exc}{self._log_tail()}") \
                from exc
        return self.url(name)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self._remove_scratch()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if (self.directory / "postmaster.pid").exists():
                try:
                    self.stop()
                except AssertionError:
                    with contextlib.suppress(AssertionError):
                        self.stop_immediate()
        finally:
            self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(binaries() / "pg_ctl"), "-D", str(self.directory), "-w", "-t", str(SERVER_WAIT), *args],
                  "pg_ctl " + args[-1])

    def _run(self, command: list[str], what: str, *, sudo: bool = True) -> None:
        """Run a command (as postgres when root and ``sudo``), bounded; an AssertionError if it fails."""
        if self.as_root and sudo:
            command = ["runuser", "-u", "postgres", "--", *command]
        try:
            # cwd /: the postgres user may not enter the caller's folder (root's home), which initdb dislikes
            result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd="/",
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{what} took more than {TIMEOUT} s: {shlex.join(command)}{self._log_tail()}") \
                from exc
        if result.returncode != 0:
            raise AssertionError(f"{what} failed (exit {result.returncode}): {shlex.join(command)}\n"
                                 f"{result.stdout}{result.stderr}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"\n--- last lines of {self.log} ---\n" + "\n".join(lines[-LOG_TAIL:])
