"""Checking that a server's worker processes die with it (``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (which only waits for its status to be read)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def assert_workers_die_with_a_killed_server(main_body: str, tmp_path: Path) -> None:
    """Run ``async def main()`` with ``main_body`` (which prints its workers' pids on
    one line and sleeps) as a server process, SIGKILL it, and see every worker go."""
    script = (
        "import asyncio\n\nasync def main():\n"
        + textwrap.indent(textwrap.dedent(main_body), "    ")
        + "\n\nif __name__ == '__main__':\n    asyncio.run(main())\n"
    )
    (tmp_path / "server.py").write_text(script)
    server = subprocess.Popen(
        [sys.executable, str(tmp_path / "server.py")], stdout=subprocess.PIPE, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)), text=True,
    )  # fmt: skip
    try:
        pids = [int(p) for p in server.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        server.kill()  # SIGKILL: no clean-up runs in the server
        server.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids)
    finally:
        server.kill()
        server.wait(10)
