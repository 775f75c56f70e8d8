"""The bridge as a real process (``python -m bridge``) for integration and browser tests.

``BridgeProcess`` starts it on a free loopback port over a SQLite store in a
work directory, and stops it with SIGTERM (or kills it with SIGKILL, which
is what the crash test wants). ``seed`` runs a coroutine against the same
store before the process starts, to create users, tokens and earlier calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bridge.auth import hash_password, new_api_token, token_hash
from conversations import open_store

REPO = Path(__file__).resolve().parents[1]


class BridgeProcess:
    """One ``python -m bridge`` process and its store."""

    def __init__(
        self, workdir: Path, *, country_code: str = "1", recordings_dir: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.recordings_dir = recordings_dir
        workdir.mkdir(parents=True, exist_ok=True)
        self.store_url = f"sqlite:///{workdir}/hotline.db"
        self.country_code = country_code
        self.log_path = workdir / "bridge.log"
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def seed(self, action: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``action(store)`` on the process's store (call it while stopped)."""

        async def run() -> Any:
            async with open_store(self.store_url, default_country_code=self.country_code) as store:
                return await action(store)

        # In a thread of its own: the caller may be inside an event loop (Playwright's
        # sync API runs one), where asyncio.run cannot start another.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()

    def add_user(self, name: str, roles: set[str], password: str) -> None:
        """A user who can log in."""
        password_hash = hash_password(password)
        self.seed(lambda store: store.add_user(name, roles, password_hash))

    def add_token(self, name: str, scopes: set[str]) -> str:
        """A new API token (returned in clear)."""
        token = new_api_token()
        self.seed(lambda store: store.add_token(name, scopes, token_hash(token)))
        return token

    def start(self, timeout_s: float = 30.0) -> BridgeProcess:
        """Start and wait for its ``{"listening": URL}`` line."""
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge",
                "--store",
                self.store_url,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--secret-file",
                str(self.workdir / "secret"),
                "--country-code",
                self.country_code,
                "--log-level",
                "warning",
                *(["--recordings-dir", str(self.recordings_dir)] if self.recordings_dir else []),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the bridge exited: {self.log_text()[-2000:]}")
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line:
                    self.url = json.loads(line)["listening"]
                    return self
        self.kill()
        raise TimeoutError(f"the bridge did not start: {self.log_text()[-2000:]}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (the store flushes), SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def log_text(self) -> str:
        """What the process wrote to standard error."""
        return self.log_path.read_text() if self.log_path.exists() else ""
