#!/usr/bin/env python3
"""Media kernels: the Cython kernels against their NumPy twins, for one 20 ms tick.

One tick of 1,000 calls at 8 kHz is 160 samples per leg. Each row is the best
of several repeats of a batch of calls (the minimum is the least disturbed by
other processes on the machine), reported per tick:

- G.711 µ-law decode and encode of every leg's frame in one ``*_into`` call, as
  the media tick does: ``media_core._g711`` (Cython) against ``_g711_py``
  (NumPy), and decode against a plain per-sample Python loop, which runs on 10
  calls and is scaled by 100 (it would take seconds on all of them).
- Mixing with ``media_core._mix`` against ``_mix_py``, in three shapes: the
  headline load (900 bridged calls plus 100 calls with a supervisor whispering
  to the agent: 2,100 legs), 1,000 plain bridges (the kernel's fast path), and
  200 five-party conferences at non-unity gains.

Every pair is first checked to give identical output. The last line of the
output is one JSON object: ``{"bench": "kernels", "g711_decode_speedup_c_vs_numpy":
X, "g711_encode_speedup_c_vs_numpy": X, "g711_decode_speedup_c_vs_python": X,
"mix_speedup_c_vs_numpy": X}`` (the mix figure is the headline load's); a
figure is null when the Cython kernels are not built. ``--quick`` takes a few
seconds.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media_core import _g711_py, _mix_py  # noqa: E402
from media_core.mixer import Mixer, MixPlan  # noqa: E402

CALLS = 1000
SAMPLES = 160  # 20 ms at 8 kHz
TICK_S = 0.020
PYTHON_CALLS = 10  # the per-sample loop runs on this many calls, then is scaled


def kernel(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"media_core.{name}")
    except ImportError:
        return None


def best_seconds(fn: Callable[[], object], repeats: int, number: int) -> float:
    """The fastest of ``repeats`` batches of ``number`` calls, per call."""
    fn()  # warm caches and lazy imports
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


# ------------------------------------------------------------------- G.711


def python_ulaw_decode(codes: bytes) -> list[int]:
    """µ-law decode one sample at a time, straight from the G.711 segment layout."""
    out = []
    for code in codes:
        inverted = ~code & 0xFF
        segment = (inverted >> 4) & 0x7
        mantissa = inverted & 0xF
        magnitude = (((mantissa << 1) + 33) << segment) - 33
        out.append(-4 * magnitude if inverted & 0x80 else 4 * magnitude)
    return out


@dataclass
class Row:
    what: str
    implementation: str
    seconds: float


def bench_g711(repeats: int, number: int) -> tuple[list[Row], dict[str, float | None]]:
    rng = np.random.default_rng(1)
    pcm = rng.integers(-32768, 32768, CALLS * SAMPLES, dtype=np.int16)
    codes = np.frombuffer(_g711_py.ulaw_encode(pcm), dtype=np.uint8).copy()
    decoded = np.empty(CALLS * SAMPLES, dtype=np.int16)
    encoded = np.empty(CALLS * SAMPLES, dtype=np.uint8)
    implementations: list[tuple[str, ModuleType]] = [("numpy", _g711_py)]
    c = kernel("_g711")
    if c is not None:
        implementations.insert(0, ("cython", c))

    rows: list[Row] = []
    times: dict[tuple[str, str], float] = {}
    reference_decode = _g711_py.ulaw_decode(codes)
    reference_encode = _g711_py.ulaw_encode(pcm)
    for label, module in implementations:
        module.ulaw_decode_into(codes, decoded)
        module.ulaw_encode_into(pcm, encoded)
        assert np.array_equal(decoded, reference_decode), f"{label} decode differs"
        assert encoded.tobytes() == reference_encode, f"{label} encode differs"
        for what, fn in (
            ("decode", lambda m=module: m.ulaw_decode_into(codes, decoded)),
            ("encode", lambda m=module: m.ulaw_encode_into(pcm, encoded)),
        ):
            seconds = best_seconds(fn, repeats, number)
            times[(what, label)] = seconds
            rows.append(Row(f"G.711 µ-law {what}", label, seconds))

    small = codes[: PYTHON_CALLS * SAMPLES].tobytes()
    assert python_ulaw_decode(small) == reference_decode[: len(small)].tolist()
    python_seconds = best_seconds(lambda: python_ulaw_decode(small), repeats, 1)
    python_seconds *= CALLS / PYTHON_CALLS
    times[("decode", "python")] = python_seconds
    rows.append(
        Row("G.711 µ-law decode", f"python loop (x{CALLS // PYTHON_CALLS})", python_seconds)
    )

    def ratio(slow: tuple[str, str], fast: tuple[str, str]) -> float | None:
        return round(times[slow] / times[fast], 2) if fast in times else None

    return rows, {
        "g711_decode_speedup_c_vs_numpy": ratio(("decode", "numpy"), ("decode", "cython")),
        "g711_encode_speedup_c_vs_numpy": ratio(("encode", "numpy"), ("encode", "cython")),
        "g711_decode_speedup_c_vs_python": ratio(("decode", "python"), ("decode", "cython")),
    }


# --------------------------------------------------------------------- mix


def headline_plan() -> MixPlan:
    """900 bridged calls, and 100 calls where a supervisor whispers to the agent."""
    mixer = Mixer()
    leg = 0
    for _ in range(900):
        mixer.bridge(leg, leg + 1)
        leg += 2
    for _ in range(100):
        room = mixer.bridge(leg, leg + 1)
        mixer.conference_add(room, leg + 2, role="whisper", whisper_to=[leg + 1])
        leg += 3
    return mixer.plan


def bridges_plan() -> MixPlan:
    mixer = Mixer()
    for call in range(CALLS):
        mixer.bridge(2 * call, 2 * call + 1)
    return mixer.plan


def conferences_plan() -> MixPlan:
    mixer = Mixer()
    rng = np.random.default_rng(5)
    for room in range(200):
        for seat in range(5):
            leg = 5 * room + seat
            mixer.conference_add(f"conf-{room}", leg)
            mixer.set_gain(leg, int(rng.integers(8000, 60000)))
    return mixer.plan


def bench_mix(repeats: int, number: int) -> tuple[list[Row], float | None]:
    c = kernel("_mix")
    implementations: list[tuple[str, ModuleType]] = [("numpy", _mix_py)]
    if c is not None:
        implementations.insert(0, ("cython", c))
    rng = np.random.default_rng(2)
    rows: list[Row] = []
    headline: dict[str, float] = {}
    shapes = [
        ("mix: 900 bridges + 100 whispered calls", headline_plan()),
        ("mix: 1,000 two-leg bridges", bridges_plan()),
        ("mix: 200 five-party conferences, gains", conferences_plan()),
    ]
    for what, plan in shapes:
        # Half-scale speech-like levels: loud enough to clip where rooms add up.
        frames_in = rng.integers(-16384, 16384, (plan.rows_needed, SAMPLES), dtype=np.int16)
        outputs = []
        for label, module in implementations:
            out = np.zeros_like(frames_in)
            args = (
                frames_in,
                plan.room_offsets,
                plan.member_legs,
                plan.member_gain_q15,
                plan.member_public,
                plan.whisper_offsets,
                plan.whisper_sources,
                out,
            )
            module.mix_rooms(*args)
            outputs.append(out)
            seconds = best_seconds(lambda m=module, a=args: m.mix_rooms(*a), repeats, number)
            rows.append(Row(what, label, seconds))
            if what == shapes[0][0]:
                headline[label] = seconds
        assert all(np.array_equal(outputs[0], other) for other in outputs[1:]), what
    speedup = round(headline["numpy"] / headline["cython"], 2) if "cython" in headline else None
    return rows, speedup


# -------------------------------------------------------------------- main


def print_table(rows: list[Row]) -> None:
    header = ("kernel (1,000 calls x 160 samples)", "implementation", "µs/tick", "% of 20 ms")
    print(f"{header[0]:<42} {header[1]:<22} {header[2]:>10} {header[3]:>10}")
    print("-" * 87)
    for row in rows:
        micros = row.seconds * 1e6
        share = 100 * row.seconds / TICK_S
        print(f"{row.what:<42} {row.implementation:<22} {micros:>10.1f} {share:>10.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a few seconds")
    args = parser.parse_args()
    repeats, number = (5, 20) if args.quick else (15, 100)
    started = time.perf_counter()
    g711_rows, g711_speedups = bench_g711(repeats, number)
    mix_rows, mix_speedup = bench_mix(repeats, number)
    print_table(g711_rows + mix_rows)
    if mix_speedup is None or g711_speedups["g711_decode_speedup_c_vs_numpy"] is None:
        print("note: a Cython kernel is not built; run `python setup.py build_ext --inplace`")
    print(f"({time.perf_counter() - started:.1f} s)")
    print(json.dumps({"bench": "kernels", **g711_speedups, "mix_speedup_c_vs_numpy": mix_speedup}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
