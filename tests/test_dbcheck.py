"""`station db check` and `station db migrate` on real SQLite files: a healthy station passes every check; each
fault it looks for (another program's database, a newer schema, the write lock held by another process, files
others may read, a damaged page) fails its check with what to do and exit 1; an older schema migrates."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest

from station import config as config_mod
from station import dbcheck
from station.store import SCHEMA_VERSION, NotAStationDatabase, Store
from tests.conftest import PRODUCT, at_version, write_lock
from tests.postgres_servers import Cluster, drop_database, free_port, fresh_database
from tests.web.conftest import STATION


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STATION, "--data-dir", str(data_dir), "db", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def healthy(data_dir: Path) -> Path:
    """A station's database as the station makes it (owner-only: config.load creates the file)."""
    with Store.configured(config_mod.load(data_dir)) as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
        store.issue(PRODUCT)
    return data_dir / "station.db"


def failed(findings: list[dbcheck.Finding]) -> dict[str, str]:
    return {finding.check: finding.detail for finding in findings if not finding.ok}


def test_a_healthy_station_passes_every_check(tmp_path: Path) -> None:
    healthy(tmp_path)
    done = run(tmp_path, "check", "--integrity")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0].split(None, 1)[1] for line in lines] == [
        "database", "schema", "journal", "write lock", "permissions", "disk", "integrity"]
    assert all(line.startswith("ok ") for line in lines)
    assert f"schema: version {SCHEMA_VERSION}, this station's" in done.stdout


def test_another_programs_database_is_named_so(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "station.db")
    conn.execute("CREATE TABLE notes (text)")
    conn.commit()
    conn.close()
    done = run(tmp_path, "check")
    assert done.returncode == 1
    assert "FAILED database:" in done.stdout and "another program" in done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("Error: 2 checks failed: database")  # and its mode


def test_a_newer_schema_says_upgrade(tmp_path: Path) -> None:
    db = healthy(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    assert failed(dbcheck.check(config_mod.load(tmp_path))) == {
        "schema": f"version {SCHEMA_VERSION + 1}, newer than this station's {SCHEMA_VERSION}: upgrade station"}


def test_the_write_lock_held_by_another_process(tmp_path: Path) -> None:
    db = healthy(tmp_path)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        (tmp_path / "station.json5").write_text("{database_timeout: 0.2}")
        problems = failed(dbcheck.check(config_mod.load(tmp_path)))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert list(problems) == ["write lock"] and "locked by another process" in problems["write lock"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_files_others_may_read(tmp_path: Path) -> None:
    db = healthy(tmp_path)
    os.chmod(db, 0o644)
    problems = failed(dbcheck.check(config_mod.Config(tmp_path)))  # (loading the configuration would tighten it)
    assert list(problems) == ["permissions"] and "station.db (-rw-r--r--)" in problems["permissions"]


def test_a_damaged_page_fails_the_integrity_check(tmp_path: Path) -> None:
    db = healthy(tmp_path)
    with Store.open(db) as store:
        store.generate_batch(PRODUCT, 5000, name="b", actor="test")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = store.conn.execute("PRAGMA page_size").fetchone()[0]
        root = store.conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'idx_devices_batch'").fetchone()[0]
    with open(db, "r+b") as raw:  # an index's root page overwritten, as a failing disk might
        raw.seek((root - 1) * page_size)
        raw.write(b"\x0d" + b"\xff" * 200)
    problems = failed(dbcheck.check(config_mod.load(tmp_path), integrity=True))
    assert list(problems) == ["integrity"] and "restore the last backup" in problems["integrity"]


def test_an_older_schema_is_migrated_on_demand(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    at_version(db, SCHEMA_VERSION - 1).close()  # as the station of the schema before made it
    assert "migrated to" in run(tmp_path, "check").stdout
    done = run(tmp_path, "migrate")
    assert done.returncode == 0 and done.stdout.strip().endswith(f"schema version {SCHEMA_VERSION - 1} -> {SCHEMA_VERSION}")
    assert run(tmp_path, "migrate").stdout.strip().endswith(f"schema version {SCHEMA_VERSION}, already")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_no_database_yet_is_said_and_nothing_is_made(tmp_path: Path) -> None:
    done = run(tmp_path / "nowhere", "check")
    assert done.returncode == 1 and "FAILED database: there is no database at" in done.stdout
    done = run(tmp_path / "nowhere", "migrate")
    assert done.returncode == 1 and "there is no database at" in done.stderr
    assert not (tmp_path / "nowhere").exists()


def test_a_read_only_database_fails_the_write_check(tmp_path: Path) -> None:
    db = healthy(tmp_path)
    os.chmod(db, 0o400)
    # root writes whatever the mode says: run the check without that power (util-linux's setpriv)
    unprivileged = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    done = subprocess.run([*unprivileged, *STATION, "--data-dir", str(tmp_path), "db", "check"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1 and "FAILED write lock:" in done.stdout and "read-only" in done.stdout, done.stdout


def test_the_check_changes_nothing(tmp_path: Path) -> None:
    db = healthy(tmp_path)
    os.chmod(db, 0o640)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")
        conn.execute("ALTER TABLE webhooks DROP COLUMN ahead")
    done = run(tmp_path, "check")
    assert done.returncode == 1 and "FAILED permissions: not owner-only: station.db (-rw-r-----)" in done.stdout
    assert oct(db.stat().st_mode & 0o777) == "0o640"  # not tightened by the check
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1  # nor migrated


def registry_dir(tmp_path: Path, url: str, **settings: object) -> Path:
    """A station's data directory whose station.json5 names the registry at ``url``."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "station.json5").write_text(json.dumps({"database": url, **settings}))
    return tmp_path


def test_a_registry_is_checked_migrated_once_and_then_passes(tmp_path: Path) -> None:
    url = fresh_database()
    try:
        data_dir = registry_dir(tmp_path, url)
        done = run(data_dir, "check")
        assert done.returncode == 1 and "FAILED schema: none yet: run `station db migrate` once" in done.stdout
        with pytest.raises(NotAStationDatabase, match="run `station db migrate` once"):  # a station never makes one
            Store.configured(config_mod.load(data_dir))
        done = run(data_dir, "migrate")
        assert done.returncode == 0 and done.stdout.strip() == f"{url}: schema version 0 -> {SCHEMA_VERSION}"
        assert run(data_dir, "migrate").stdout.strip() == f"{url}: schema version {SCHEMA_VERSION}, already"
        done = run(data_dir, "check")
        assert done.returncode == 0, done.stdout + done.stderr
        assert [line.split(":")[0].split(None, 1)[1] for line in done.stdout.splitlines()] == [
            "database", "schema", "write lock", "rights", "permissions", "disk"]
        assert "PostgreSQL" in done.stdout and "password" not in done.stdout
    finally:
        drop_database(url)


def test_a_registry_that_cannot_be_reached_names_it_without_its_password(tmp_path: Path) -> None:
    data_dir = registry_dir(tmp_path, f"postgresql://station:s3cret-pw@127.0.0.1:{free_port()}/station")
    done = run(data_dir, "check")
    assert done.returncode == 1 and "FAILED database: the registry postgresql://station@127.0.0.1:" in done.stdout
    assert "cannot be reached" in done.stdout and "s3cret-pw" not in done.stdout + done.stderr


def test_a_role_without_the_rights_and_a_held_lock_fail_their_checks(tmp_path: Path) -> None:
    with Cluster() as cluster:
        url = cluster.create_database()
        Store.open(url, migrate=True).close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("CREATE ROLE reader LOGIN")
            admin.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
        reader = url.replace("station@", "reader@", 1)
        problems = failed(dbcheck.check(config_mod.load(registry_dir(tmp_path, reader))))
        assert set(problems) == {"write lock", "rights"}
        assert "may not do this" in problems["write lock"] and "lacks batches: INSERT" in problems["rights"]
        with write_lock(url):
            problems = failed(dbcheck.check(config_mod.load(registry_dir(tmp_path, url, database_timeout=0.2))))
        assert set(problems) == {"write lock"} and "locked by another station" in problems["write lock"]


def test_the_least_rights_of_the_readme_serve_a_line(tmp_path: Path) -> None:
    """The README's set-up of a shared registry, on a private cluster (whose superuser is "station"): an owner that
    migrates, and a role that only reads and writes rows, which issues, makes a batch through COPY and passes
    every check."""
    with Cluster() as cluster:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as su:
            su.execute("CREATE ROLE registry_admin LOGIN")
            su.execute("CREATE DATABASE registry OWNER registry_admin ENCODING 'UTF8' TEMPLATE template0")
            su.execute("CREATE ROLE line LOGIN")
        with psycopg.connect(cluster.url("registry"), autocommit=True) as su:
            su.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            su.execute("GRANT USAGE ON SCHEMA public TO line")
            su.execute("ALTER DEFAULT PRIVILEGES FOR ROLE registry_admin IN SCHEMA public "
                       "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO line")
            su.execute("ALTER DEFAULT PRIVILEGES FOR ROLE registry_admin IN SCHEMA public GRANT USAGE ON SEQUENCES TO line")
        admin = cluster.url("registry").replace("station@", "registry_admin@", 1)
        assert run(registry_dir(tmp_path / "admin", admin), "migrate").returncode == 0
        data_dir = registry_dir(tmp_path / "line", admin.replace("registry_admin@", "line@", 1), name="line-1")
        with Store.configured(config_mod.load(data_dir)) as store:
            store.add_product(PRODUCT, "Blank", "Blank-01")
            store.issue(PRODUCT)
            assert store.generate_batch(PRODUCT, 1000, name="b1").issued == 1000
            with pytest.raises(store.engine.error, match="permission denied|must be owner"):
                store.conn.execute("DROP TABLE events")  # the line's role cannot change the schema
        done = run(data_dir, "check")
        assert done.returncode == 0, done.stdout + done.stderr
