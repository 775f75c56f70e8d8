"""The recording tap: a call's stereo frames in chunks, for the writer thread."""

from __future__ import annotations

import numpy as np

from media_core.recording_tap import RecordingChunk, RecordingTap

SAMPLES = 160


class _Sink:
    """A recorder that keeps what it is given."""

    def __init__(self) -> None:
        self.written: list[np.ndarray] = []
        self.closed = False

    def write_interleaved(self, stereo_pcm: np.ndarray) -> None:
        self.written.append(stereo_pcm)

    def close(self) -> None:
        self.closed = True


def _frame(value: int) -> np.ndarray:
    return np.full(SAMPLES, value, dtype=np.int16)


def _feed(tap: RecordingTap, frames: int) -> list[tuple[int, RecordingChunk]]:
    chunks = []
    for index in range(frames):
        chunk = tap.add(_frame(index), _frame(-index))
        if chunk is not None:
            chunks.append((index, chunk))
    return chunks


def test_a_chunk_holds_chunk_frames_ticks_interleaved_caller_left_heard_right():
    tap = RecordingTap(_Sink(), SAMPLES, chunk_frames=5)  # type: ignore[arg-type]
    chunks = _feed(tap, 10)
    assert [index for index, _ in chunks] == [4, 9]
    stereo = chunks[0][1].stereo_pcm.reshape(-1, 2)
    assert len(stereo) == 5 * SAMPLES
    assert stereo[:, 0].tolist() == np.repeat(np.arange(5), SAMPLES).tolist()
    assert stereo[:, 1].tolist() == (-np.repeat(np.arange(5), SAMPLES)).tolist()


def test_taps_with_different_phases_hand_in_their_chunks_on_different_ticks():
    taps = [RecordingTap(_Sink(), SAMPLES, 5, phase=p) for p in range(5)]  # type: ignore[arg-type]
    first_chunk_ticks = [_feed(tap, 5)[0][0] for tap in taps]
    assert sorted(first_chunk_ticks) == [0, 1, 2, 3, 4]


def test_a_phase_only_shortens_the_first_chunk_and_loses_no_audio():
    tap = RecordingTap(_Sink(), SAMPLES, chunk_frames=5, phase=7)  # 7 % 5: first chunk 3 frames
    chunks = _feed(tap, 13)
    assert [len(chunk.stereo_pcm) // (2 * SAMPLES) for _, chunk in chunks] == [3, 5, 5]
    final = tap.close()
    assert final.final and len(final.stereo_pcm) == 0
    left = np.concatenate([chunk.stereo_pcm.reshape(-1, 2)[:, 0] for _, chunk in chunks])
    assert left.tolist() == np.repeat(np.arange(13), SAMPLES).tolist()


def test_closing_hands_in_the_partial_chunk_marked_final():
    tap = RecordingTap(_Sink(), SAMPLES, chunk_frames=5)  # type: ignore[arg-type]
    _feed(tap, 2)
    final = tap.close()
    assert final.final
    assert len(final.stereo_pcm) == 2 * SAMPLES * 2
