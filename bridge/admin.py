"""Operator commands: ``hotline user add|passwd`` and ``hotline token create|list|revoke``.

They open the store directly (``--store URL``, by default the server's
``sqlite:///var/hotline.db``), so they work whether or not the server runs.
Passwords come from a prompt (typed twice, not echoed) or, for scripts, one
line on standard input (``--password-stdin``); never from the command line,
where other users could read them in the process list. ``token create``
prints the token alone on standard output, once: only its hash is kept.

``cli.py`` calls ``add_subcommands`` on its subparsers and hands ``user`` and
``token`` commands to ``run``. Heavy imports wait until a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any, TextIO

from bridge.scopes import ROLES, SCOPES

__all__ = ["COMMANDS", "MIN_PASSWORD_CHARS", "add_subcommands", "run"]

COMMANDS = ("user", "token")
MIN_PASSWORD_CHARS = 8
DEFAULT_STORE_URL = "sqlite:///var/hotline.db"


def _store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=DEFAULT_STORE_URL,
        help=f"conversation store (default {DEFAULT_STORE_URL}; postgresql://USER@HOST:PORT/DB)",
    )


def add_subcommands(commands: Any) -> None:
    """Add ``user`` and ``token`` to the ``hotline`` subparsers."""
    user = commands.add_parser("user", help="manage the people who log in (agents, QA, admins)")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser(
        "add",
        help="add a user",
        description="Add a user with one or more roles; the password is asked for.",
    )
    add.add_argument("name", help="the login name (no spaces)")
    add.add_argument(
        "--role",
        action="append",
        required=True,
        choices=sorted(ROLES),
        help="agent, qa or admin (repeatable)",
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    _store_flag(add)
    passwd = user_commands.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    _store_flag(passwd)

    token = commands.add_parser("token", help="manage API tokens for text channels")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create",
        help="create a token and print it (once)",
        description="Create an API token for Authorization: Bearer. It is printed once; "
        "only its hash is stored.",
    )
    create.add_argument("name", help="what the token is for (shown in the audit log)")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=sorted(SCOPES),
        help="what it may do (repeatable)",
    )
    _store_flag(create)
    listing = token_commands.add_parser("list", help="list tokens (never their secrets)")
    _store_flag(listing)
    revoke = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id", type=int, metavar="ID")
    _store_flag(revoke)


def read_password(
    from_stdin: bool, stdin: TextIO | None = None, prompt: Any = getpass.getpass
) -> str:
    """The new password, from one line of ``stdin`` or typed twice at a prompt.

    Raises:
        ValueError: too short, or the two typed differ.
    """
    if from_stdin:
        password = (stdin or sys.stdin).readline().rstrip("\r\n")
    else:
        password = prompt("Password: ")
        if prompt("Password again: ") != password:
            raise ValueError("the passwords differ")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


def run(args: argparse.Namespace) -> int:
    """Run a ``user`` or ``token`` command; return the exit status."""
    from conversations import StoreError

    try:
        if args.command == "user":
            password = read_password(args.password_stdin)
            return asyncio.run(_user(args, password))
        return asyncio.run(_token(args))
    except (ValueError, StoreError) as exc:
        print(f"hotline {args.command}: {exc}", file=sys.stderr)
        return 1


async def _user(args: argparse.Namespace, password: str) -> int:
    from bridge.auth import hash_password
    from conversations import open_store

    password_hash = await asyncio.to_thread(hash_password, password)
    async with open_store(args.store) as store:
        if args.user_command == "add":
            user = await store.add_user(args.name, set(args.role), password_hash)
            await store.audit("cli", "user.add", f"user:{user.name}", {"roles": sorted(user.roles)})
            print(f"user {user.name} added with roles {', '.join(sorted(user.roles))}")
        else:
            if await store.get_user(args.name) is None:
                raise ValueError(f"no user {args.name}")
            await store.set_password(args.name, password_hash)
            await store.audit("cli", "user.passwd", f"user:{args.name}")
            print(f"password of {args.name} changed")
    return 0


async def _token(args: argparse.Namespace) -> int:
    from bridge.auth import new_api_token, token_hash
    from conversations import open_store

    async with open_store(args.store) as store:
        if args.token_command == "create":
            token = new_api_token()
            created = await store.add_token(args.name, set(args.scope), token_hash(token))
            await store.audit(
                "cli", "token.create", f"token:{created.id}", {"scopes": sorted(created.scopes)}
            )
            print(token)
            print(
                f"token {created.id} ({created.name}: {', '.join(sorted(created.scopes))}) "
                "created; it is shown only this once",
                file=sys.stderr,
            )
        elif args.token_command == "list":
            for item in await store.list_tokens():
                state = "revoked" if item.revoked else "active"
                print(f"{item.id}\t{item.name}\t{','.join(sorted(item.scopes))}\t{state}")
        else:
            await store.revoke_token(args.token_id)
            await store.audit("cli", "token.revoke", f"token:{args.token_id}")
            print(f"token {args.token_id} revoked")
    return 0
