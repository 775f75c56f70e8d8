"""/metrics formatting: the Prometheus text format, escaped labels, units in seconds."""

from __future__ import annotations

import math
import re

import pytest

from bridge.live import empty_metrics
from bridge.metrics import Exposition, escape_label_value, format_value, render_metrics

# The text format (0.0.4), one sample line: name, optional {labels}, value.
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{(?P<labels>{LABEL}(?:,{LABEL})*)\}})? "
    r"(?P<value>NaN|[+-]Inf|-?[0-9.e+-]+)"
)


def parse(text: str) -> dict[tuple[str, str], str]:
    """Every sample as (name, labels) -> value; asserts each line is well formed."""
    assert text.endswith("\n")
    samples: dict[tuple[str, str], str] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter")
            typed.add(name)
            continue
        match = SAMPLE.fullmatch(line)
        assert match is not None, f"not a sample line: {line!r}"
        assert match["name"] in typed, f"{match['name']} has no TYPE line before it"
        samples[(match["name"], match["labels"] or "")] = match["value"]
    return samples


def busy_metrics() -> dict[str, object]:
    metrics = empty_metrics()
    metrics.update(
        active_calls=7,
        calls_by_state={"ivr": 3, "queued": 2, "connected": 2},
        queues={
            "nurse": {"length": 2, "oldest_wait_s": 12.5},
            'say "hi"\\now\nplease': {"length": 0, "oldest_wait_s": 0.0},
        },
        asr_latency_ms={"p50": 180.0, "p95": 420.0},
        packet_loss_ratio=0.01,
        jitter_ms=4.0,
        tick_overruns=3,
    )
    return metrics


def test_every_figure_is_exported_in_base_units() -> None:
    stats = {"pending_writes": 4, "write_lag_ms": 35.0, "batches": 10, "events_written": 900}
    samples = parse(render_metrics(busy_metrics(), stats, {"agent": 2, "chat": 5}))
    assert samples[("hotline_active_calls", "")] == "7"
    assert samples[("hotline_calls", 'state="queued"')] == "2"
    assert samples[("hotline_queue_length", 'queue="nurse"')] == "2"
    assert samples[("hotline_queue_oldest_wait_seconds", 'queue="nurse"')] == "12.5"
    assert samples[("hotline_asr_latency_seconds", 'quantile="0.5"')] == "0.18"
    assert samples[("hotline_asr_latency_seconds", 'quantile="0.95"')] == "0.42"
    assert samples[("hotline_rtp_packet_loss_ratio", "")] == "0.01"
    assert samples[("hotline_rtp_jitter_seconds", "")] == "0.004"
    assert samples[("hotline_media_tick_overruns_total", "")] == "3"
    assert samples[("hotline_store_write_lag_seconds", "")] == "0.035"
    assert samples[("hotline_store_pending_writes", "")] == "4"
    assert samples[("hotline_store_events_written_total", "")] == "900"
    assert samples[("hotline_bridge_websockets", 'page="chat"')] == "5"


def test_label_values_are_escaped() -> None:
    text = render_metrics(busy_metrics(), {}, {})
    assert 'hotline_queue_length{queue="say \\"hi\\"\\\\now\\nplease"} 0' in text.splitlines()
    parse(text)  # and every line still parses


def test_escape_label_value() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_missing_figures_are_left_out_not_zero() -> None:
    samples = parse(render_metrics({"active_calls": 1}, {}, {}))
    assert set(samples) == {("hotline_active_calls", "")}


def test_nan_latency_before_any_recognition() -> None:
    samples = parse(render_metrics(empty_metrics(), {}, {}))
    assert samples[("hotline_asr_latency_seconds", 'quantile="0.5"')] == "NaN"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (0.25, "0.25"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (True, "1"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_exposition_refuses_bad_names() -> None:
    out = Exposition()
    with pytest.raises(ValueError, match="metric name"):
        out.single("bad-name", "gauge", "x", 1)
    with pytest.raises(ValueError, match="label name"):
        out.family("ok", "gauge", "x", [({"bad-label": "v"}, 1)])
    out.single("twice", "gauge", "x", 1)
    with pytest.raises(ValueError, match="twice"):
        out.single("twice", "gauge", "x", 1)


def test_help_text_is_escaped() -> None:
    out = Exposition()
    out.single("m", "gauge", "line one\nback\\slash", 1)
    assert out.text().splitlines()[0] == "# HELP m line one\\nback\\\\slash"
