"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package.

``ThrowawayPostgres.start()`` runs ``initdb`` into a fresh temporary directory
(trust authentication, nothing else on the machine touched), starts the server on
a free port of 127.0.0.1 with its unix socket in that directory, and ``stop()``
stops it with ``pg_ctl stop -m immediate`` and deletes the directory. initdb
refuses to run as root, so as root every server command runs as the
``postgres`` system user (created by the Debian package) through ``runuser``
or ``setpriv``, and the directory is handed to that user.

Used by the store tests (a session fixture in ``tests/unit/conversations``) and
``benchmarks/store.py``.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresUnavailable", "ThrowawayPostgres", "postgres_bin_dir"]

_START_TIMEOUT_S = 30


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (or a user to run them as) are missing."""


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""
    candidates = [
        Path(path).parent
        for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if os.access(Path(path).parent / "pg_ctl", os.X_OK)
    ]
    if not candidates:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
            "(install the Debian package postgresql: tools/install-system-deps.sh)"
        )

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(candidates, key=version)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThrowawayPostgres:
    """One private cluster; see the module docstring."""

    def __init__(self, *, fsync: bool = False) -> None:
        """Configure.

        Args:
            fsync: keep PostgreSQL's fsync on (benchmarks); tests turn it off,
                since nothing they check survives a machine crash anyway.
        """
        self.bin_dir = postgres_bin_dir()
        self.fsync = fsync
        self.port = 0
        self.directory: Path | None = None
        self._prefix: list[str] = []
        self._databases = 0
        self._emptied: set[str] = set()

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        """A URL for asyncpg (and libpq) to one database of the cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> ThrowawayPostgres:
        """initdb and start; raises ``PostgresUnavailable`` or ``RuntimeError``."""
        self._prefix = self._run_as_prefix()
        self.directory = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        atexit.register(self.stop)
        if self._prefix:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._run(
            "initdb", "-D", str(self.data_dir), "--auth=trust", "--username=postgres",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        log = self.directory / "server.log"
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = _free_port()
            options = f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c max_connections=60"
            if not self.fsync:
                options += " -F"
            started = self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-w", "-t", str(_START_TIMEOUT_S),
                "-l", str(log), "-o", options, check=False,
            )  # fmt: skip
            if started.returncode == 0:
                return self
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{tail}")

    def stop(self) -> None:
        """Stop the server at once and delete its directory (twice is harmless)."""
        directory, self.directory = self.directory, None
        if directory is None:
            return
        if (directory / "data" / "postmaster.pid").exists():
            subprocess.run(
                [*self._prefix, str(self.bin_dir / "pg_ctl"), "stop", "-D",
                 str(directory / "data"), "-m", "immediate", "-w"],
                capture_output=True, check=False, timeout=60,
            )  # fmt: skip
        shutil.rmtree(directory, ignore_errors=True)

    def create_database(self) -> str:
        """A new empty database (``test_1``, ``test_2``...); returns its URL."""
        self._databases += 1
        name = f"test_{self._databases}"
        self._psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def empty_database(self, name: str = "hotline_test") -> str:
        """The database ``name``, created once and emptied at each call; its URL.

        Much quicker than a new database per test (about 20 ms against 300 ms):
        the ``public`` schema is dropped with everything in it and made again.
        Nobody may be connected to it.
        """
        if name not in self._emptied:
            self._psql(f"CREATE DATABASE {name}")
            self._emptied.add(name)
        self._psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public", database=name)
        return self.url(name)

    def _psql(self, command: str, database: str = "postgres") -> None:
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-c", command)  # fmt: skip

    def _run_as_prefix(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "running as root, and initdb refuses root, but there is no 'postgres' "
                "user to run it as (the Debian package creates one)"
            ) from None
        if shutil.which("runuser"):
            return ["runuser", "-u", "postgres", "--"]
        if shutil.which("setpriv"):
            account = pwd.getpwnam("postgres")
            return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                    "--init-groups", "--"]  # fmt: skip
        raise PostgresUnavailable("running as root without runuser or setpriv to drop to postgres")

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [*self._prefix, str(self.bin_dir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result
