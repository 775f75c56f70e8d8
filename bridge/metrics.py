r"""``/metrics``: the server's live figures in the Prometheus text format (version 0.0.4).

Units follow Prometheus' conventions (seconds, ratios), so ``Live.metrics``'
milliseconds are converted here. Label values are escaped as the format
requires (backslash, double quote and line feed), so a queue named
``say "hi"\now`` cannot break the exposition.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CONTENT_TYPE", "Exposition", "escape_label_value", "format_value", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

Labels = Mapping[str, str]


def escape_label_value(value: str) -> str:
    r"""Escape a label value: ``\`` -> ``\\``, ``"`` -> ``\"``, line feed -> ``\n``."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as the format spells it (``NaN``, ``+Inf``, ``-Inf``, else Go-like)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Exposition:
    """Builds one exposition: families of samples, each with its HELP and TYPE."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._names: set[str] = set()

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[Labels, float]],
    ) -> None:
        """Add a family (``kind`` gauge or counter); a family without samples is left out."""
        if _METRIC_NAME.fullmatch(name) is None:
            raise ValueError(f"bad metric name {name!r}")
        if name in self._names:
            raise ValueError(f"metric {name} added twice")
        if kind not in ("gauge", "counter"):
            raise ValueError(f"unsupported metric type {kind!r}")
        lines = [self._sample(name, labels, value) for labels, value in samples]
        if not lines:
            return
        self._names.add(name)
        self._lines.append(f"# HELP {name} {_escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")
        self._lines.extend(lines)

    def single(self, name: str, kind: str, help_text: str, value: float | None) -> None:
        """Add a family of one unlabelled sample (left out when ``value`` is None)."""
        self.family(name, kind, help_text, [] if value is None else [({}, value)])

    @staticmethod
    def _sample(name: str, labels: Labels, value: float) -> str:
        if not labels:
            return f"{name} {format_value(value)}"
        parts = []
        for label, label_value in labels.items():
            if _LABEL_NAME.fullmatch(label) is None or label.startswith("__"):
                raise ValueError(f"bad label name {label!r}")
            parts.append(f'{label}="{escape_label_value(str(label_value))}"')
        return f"{name}{{{','.join(parts)}}} {format_value(value)}"

    def text(self) -> str:
        """The exposition, ending with a line feed as the format requires."""
        return "\n".join(self._lines) + "\n"


def _number(source: Mapping[str, Any], key: str) -> float | None:
    value = source.get(key)
    return value if isinstance(value, int | float) else None


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def render_metrics(
    live: Mapping[str, Any], store_stats: Mapping[str, Any], websockets: Mapping[str, int]
) -> str:
    """The exposition of ``Live.metrics()``, ``store.stats()`` and the bridge's sockets."""
    out = Exposition()
    out.single("hotline_active_calls", "gauge", "Calls up now.", _number(live, "active_calls"))
    out.family(
        "hotline_calls",
        "gauge",
        "Calls up now by state (ivr, queued, ringing, connected, ...).",
        [
            ({"state": state}, count)
            for state, count in sorted(live.get("calls_by_state", {}).items())
        ],
    )
    queues: Mapping[str, Mapping[str, Any]] = live.get("queues", {})
    out.family(
        "hotline_queue_length",
        "gauge",
        "Calls waiting in each queue.",
        [({"queue": name}, queue.get("length", 0)) for name, queue in sorted(queues.items())],
    )
    out.family(
        "hotline_queue_oldest_wait_seconds",
        "gauge",
        "How long the longest-waiting call of each queue has waited (0 when empty).",
        [
            ({"queue": name}, queue.get("oldest_wait_s", 0.0))
            for name, queue in sorted(queues.items())
        ],
    )
    latency: Mapping[str, Any] = live.get("asr_latency_ms", {})
    out.family(
        "hotline_asr_latency_seconds",
        "gauge",
        "Speech recognition latency, end of speech to final result, by quantile.",
        [
            ({"quantile": quantile}, latency[key] / 1000.0)
            for key, quantile in (("p50", "0.5"), ("p95", "0.95"))
            if isinstance(latency.get(key), int | float)
        ],
    )
    out.single(
        "hotline_rtp_packet_loss_ratio",
        "gauge",
        "Inbound RTP packets lost over expected (0..1).",
        _number(live, "packet_loss_ratio"),
    )
    out.single(
        "hotline_rtp_jitter_seconds",
        "gauge",
        "Mean inbound interarrival jitter over calls (RFC 3550 6.4.1).",
        _scaled(_number(live, "jitter_ms"), 0.001),
    )
    out.single(
        "hotline_media_tick_overruns_total",
        "counter",
        "Media ticks that ran past their 20 ms slot.",
        _number(live, "tick_overruns"),
    )
    out.single(
        "hotline_store_write_lag_seconds",
        "gauge",
        "Age of the oldest write the store has not committed yet.",
        _scaled(_number(store_stats, "write_lag_ms"), 0.001),
    )
    out.single(
        "hotline_store_pending_writes",
        "gauge",
        "Writes queued for the store's writer.",
        _number(store_stats, "pending_writes"),
    )
    out.single(
        "hotline_store_batches_total",
        "counter",
        "Batches the store's writer has committed.",
        _number(store_stats, "batches"),
    )
    out.single(
        "hotline_store_events_written_total",
        "counter",
        "Call events the store has committed.",
        _number(store_stats, "events_written"),
    )
    out.family(
        "hotline_bridge_websockets",
        "gauge",
        "Open WebSockets of the bridge, by page.",
        [({"page": page}, count) for page, count in sorted(websockets.items())],
    )
    return out.text()
