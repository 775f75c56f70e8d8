"""RFC 9110 §14 range planning (sans-IO), the path guard and the playback-audit window."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.audio_files import OutsideRoot, recording_file
from bridge.byte_ranges import ByteRange, RangeNotSatisfiable, entity_tag, plan_range
from bridge.playback_audit import PlaybackAudit

SIZE = 1000
ETAG = entity_tag(1_700_000_000_123_456_789, SIZE)
LAST_MODIFIED_S = 1_700_000_000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", ByteRange(0, 1000, SIZE)),
        ("bytes=0-0", ByteRange(0, 1, SIZE)),
        ("bytes=100-199", ByteRange(100, 100, SIZE)),
        ("bytes=990-5000", ByteRange(990, 10, SIZE)),  # last-pos past the end: to the end
        ("bytes=999-", ByteRange(999, 1, SIZE)),
        ("bytes=-200", ByteRange(800, 200, SIZE)),  # a suffix
        ("bytes=-5000", ByteRange(0, 1000, SIZE)),  # a suffix longer than the file
        ("BYTES=1-2", ByteRange(1, 2, SIZE)),  # units are case-insensitive (§14.1)
        (" bytes=1-2 ", ByteRange(1, 2, SIZE)),
        ("bytes=1-2,", ByteRange(1, 2, SIZE)),  # #rule: empty list elements are allowed
        ("bytes=0-" + "9" * 40, ByteRange(0, 1000, SIZE)),  # a huge last-pos is "the end"
    ],
)
def test_satisfiable_single_ranges_are_one_slice(header: str, expected: ByteRange) -> None:
    assert plan_range(header, SIZE) == expected


def test_content_range_values() -> None:
    assert ByteRange(100, 100, SIZE).content_range == "bytes 100-199/1000"
    assert RangeNotSatisfiable(SIZE).content_range == "bytes */1000"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",  # first-pos at the length
        "bytes=5000-6000",
        "bytes=-0",  # a zero-length suffix selects nothing (§14.1.1)
        "bytes=" + "9" * 40 + "-",  # huge, not an error in int()
    ],
)
def test_ranges_beyond_the_file_are_416(header: str) -> None:
    assert plan_range(header, SIZE) == RangeNotSatisfiable(SIZE)


@pytest.mark.parametrize(
    "header",
    [
        "items=0-10",  # another unit: ignored (§14.2)
        "bytes=0-1,5-6",  # several ranges: served whole rather than multipart
        "bytes=5-2",  # last-pos below first-pos: an invalid range-spec (§14.1.1)
        "bytes=abc",
        "bytes=",
        "bytes=1-2-3",
        "0-10",
    ],
)
def test_other_units_several_or_invalid_ranges_get_the_whole_file(header: str) -> None:
    assert plan_range(header, SIZE) is None


def test_no_range_is_the_whole_file() -> None:
    assert plan_range(None, SIZE) is None


def test_an_empty_file_satisfies_no_range() -> None:
    assert plan_range("bytes=0-", 0) == RangeNotSatisfiable(0)
    assert plan_range("bytes=-10", 0) == RangeNotSatisfiable(0)


@pytest.mark.parametrize(
    ("if_range", "honoured"),
    [
        (ETAG, True),
        ('"another"', False),
        ("W/" + ETAG, False),  # a weak tag never matches (§13.1.5)
        ("Tue, 14 Nov 2023 22:13:20 GMT", True),  # exactly Last-Modified
        ("Tue, 14 Nov 2023 22:13:21 GMT", False),
        ("not a date", False),
    ],
)
def test_if_range_keeps_the_range_only_while_the_validator_matches(
    if_range: str, honoured: bool
) -> None:
    plan = plan_range(
        "bytes=10-19", SIZE, if_range=if_range, etag=ETAG, last_modified_s=LAST_MODIFIED_S
    )
    assert plan == (ByteRange(10, 10, SIZE) if honoured else None)


def test_entity_tags_are_strong_and_change_with_the_file() -> None:
    assert ETAG.startswith('"') and ETAG.endswith('"')
    assert entity_tag(1, SIZE) != entity_tag(2, SIZE) != entity_tag(2, SIZE + 1)


# ----------------------------------------------------------------- the path guard


def test_recording_paths_resolve_under_the_root(tmp_path: Path) -> None:
    (tmp_path / "2026-12-02").mkdir()
    target = tmp_path / "2026-12-02" / "call.wav"
    target.write_bytes(b"RIFF")
    assert recording_file(tmp_path, "2026-12-02/call.wav") == target.resolve()


@pytest.mark.parametrize(
    "path",
    [
        "../secret",
        "2026-12-02/../../secret",
        "/etc/passwd",
        "",
        "a\x00b.wav",
        "..\\secret",
    ],
)
def test_paths_that_leave_the_root_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(OutsideRoot):
        recording_file(tmp_path / "recordings", path)


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    os.symlink(tmp_path / "secret.wav", root / "link.wav")
    with pytest.raises(OutsideRoot):
        recording_file(root, "link.wav")


# ------------------------------------------------------------ the playback window


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_audit_entry_per_listener_and_recording_per_window() -> None:
    clock = FakeClock()
    audits = PlaybackAudit(window_s=300.0, clock=clock)
    assert audits.should_audit("quinn", 1)
    assert not audits.should_audit("quinn", 1)  # the player's next Range request
    assert audits.should_audit("quinn", 2)  # another recording
    assert audits.should_audit("root", 1)  # another listener
    clock.now += 299.0
    assert not audits.should_audit("quinn", 1)
    clock.now += 1.0
    assert audits.should_audit("quinn", 1)  # a new window: a new entry


def test_forget_lets_a_failed_entry_be_written_again() -> None:
    audits = PlaybackAudit(clock=FakeClock())
    assert audits.should_audit("quinn", 1)
    audits.forget("quinn", 1)
    assert audits.should_audit("quinn", 1)
