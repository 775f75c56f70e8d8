"""hotline user add / token create: a user who can log in, a token the API accepts."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.admin import read_password
from bridge.auth import token_hash, verify_password
from conversations import open_store
from hotline.cli import main

REPO = Path(__file__).resolve().parents[3]


def hotline(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


async def stored(url: str) -> tuple[object, list[object]]:
    async with open_store(url) as store:
        return await store.get_user("ann"), await store.list_tokens()


def test_user_add_and_token_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    added = hotline(
        "user",
        "add",
        "ann",
        "--role",
        "agent",
        "--role",
        "qa",
        "--password-stdin",
        "--store",
        url,
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    assert "ann added with roles agent, qa" in added.stdout
    created = hotline("token", "create", "website", "--scope", "messages:write", "--store", url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("hl_") and "\n" not in token
    assert "shown only this once" in created.stderr
    user, tokens = asyncio.run(stored(url))
    assert user.roles == frozenset({"agent", "qa"})
    assert verify_password(user.password_hash, "a long enough password")
    (api_token,) = tokens
    assert api_token.scopes == frozenset({"messages:write"})
    listed = hotline("token", "list", "--store", url)
    assert listed.stdout.split("\t")[:3] == [str(api_token.id), "website", "messages:write"]
    assert token not in listed.stdout  # never shown again

    async def by_hash() -> object:
        async with open_store(url) as store:
            return await store.token_by_hash(token_hash(token))

    assert asyncio.run(by_hash()) is not None
    revoked = hotline("token", "revoke", str(api_token.id), "--store", url)
    assert revoked.returncode == 0


def test_errors_exit_1_with_a_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    ok = hotline(
        "user",
        "add",
        "ann",
        "--role",
        "agent",
        "--password-stdin",
        "--store",
        url,
        stdin="a long enough password\n",
    )
    assert ok.returncode == 0
    again = hotline(
        "user",
        "add",
        "ann",
        "--role",
        "agent",
        "--password-stdin",
        "--store",
        url,
        stdin="a long enough password\n",
    )
    assert again.returncode == 1 and "ann" in again.stderr
    short = hotline(
        "user", "add", "bob", "--role", "agent", "--password-stdin", "--store", url, stdin="short\n"
    )
    assert short.returncode == 1 and "at least 8" in short.stderr
    spaced = hotline(
        "user",
        "add",
        "b b",
        "--role",
        "agent",
        "--password-stdin",
        "--store",
        url,
        stdin="a long enough password\n",
    )
    assert spaced.returncode == 1 and "white space" in spaced.stderr


def test_unknown_role_or_scope_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["user", "add", "ann", "--role", "boss"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit):
        main(["token", "create", "x", "--scope", "everything"])
    assert "invalid choice" in capsys.readouterr().err


def test_password_prompt_asks_twice() -> None:
    answers = iter(["first password", "other password"])
    with pytest.raises(ValueError, match="differ"):
        read_password(False, prompt=lambda _: next(answers))
    answers = iter(["same password", "same password"])
    assert read_password(False, prompt=lambda _: next(answers)) == "same password"
    assert read_password(True, stdin=io.StringIO("from stdin ok\nignored")) == "from stdin ok"
