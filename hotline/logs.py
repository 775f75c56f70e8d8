"""Logging set-up: one line per event, with the call-id on every call's line."""

from __future__ import annotations

import logging
import sys
from typing import Any


class CallLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefix every message with ``[call-id]`` so a call's lines can be grepped."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:  # noqa: D102
        return f"[{self.extra['call_id'] if self.extra else '-'}] {msg}", kwargs


def call_log(name: str, call_id: str) -> CallLog:
    """A logger whose lines carry ``call_id``."""
    return CallLog(logging.getLogger(name), {"call_id": call_id})


def setup_logging(level: str) -> None:
    """Log to stderr as ``time level logger message``."""
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-5s %(name)s %(message)s",
    )
