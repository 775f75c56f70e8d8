"""Write the in-band DTMF fixtures: the keys 3 and 7 as tone pairs in 8 kHz audio.

- ``dtmf_inband_3_7.pcap``: that audio as RTP/PCMU, for SIPp to replay;
- ``dtmf_inband_3_7_8k.wav``: the same audio as 16-bit PCM, for a pjsua2 phone to play.

Run once by hand (``python tests/data/media/make_dtmf_fixtures.py``); the tests read
the committed files and never run this. It is kept so the fixtures can be
checked and remade; the layout below is what ``tests/integration/test_dtmf_calls.py`` asserts against.

The capture is a classic libpcap file (Ethernet link type), one packet per 20 ms
of 8 kHz audio, each Ethernet / IPv4 / UDP / RTP (PT 0, PCMU) with its timestamp
20 ms after the previous one. SIPp's ``play_pcap_audio`` replays the UDP
payloads at the captured pace, towards the answerer's RTP port.

Timeline (ms): 0-300 silence, 300-420 key 3 (697 + 1477 Hz), 420-520 silence,
520-720 key 7 (852 + 1209 Hz), 720-1100 silence. Each tone is about -10 dBm0.
"""

from __future__ import annotations

import struct
import sys
import wave
from pathlib import Path

import numpy as np

RATE_HZ = 8000
FRAME_SAMPLES = 160  # 20 ms
TONE_PEAK = 7000  # per tone, about -10 dBm0
# (key, low Hz, high Hz, start ms, duration ms)
KEYS = [("3", 697.0, 1477.0, 300, 120), ("7", 852.0, 1209.0, 520, 200)]
TOTAL_MS = 1100


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """ITU-T G.711 μ-law: bias 0x84, segment = position of the top bit, bits inverted."""
    samples = pcm.astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def audio() -> np.ndarray:
    t = np.arange(TOTAL_MS * RATE_HZ // 1000) / RATE_HZ
    pcm = np.zeros_like(t)
    for _, low_hz, high_hz, start_ms, duration_ms in KEYS:
        on = (t >= start_ms / 1000) & (t < (start_ms + duration_ms) / 1000)
        phase = 2 * np.pi * t[on]
        pcm[on] = TONE_PEAK * (np.sin(low_hz * phase) + np.sin(high_hz * phase))
    return np.round(pcm).astype(np.int16)


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def packet(rtp: bytes, ip_id: int) -> bytes:
    udp_len = 8 + len(rtp)
    udp = struct.pack("!HHHH", 6000, 6002, udp_len, 0) + rtp  # checksum 0: none (RFC 768)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    ethernet = b"\x00" * 6 + b"\x00" * 6 + b"\x08\x00"
    return ethernet + ip + udp


def write_wav(out: Path) -> None:
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE_HZ)
        wav.writeframes(audio().astype("<i2").tobytes())


def write_pcap(out: Path) -> None:
    payload = ulaw_encode(audio())
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    ssrc, base_seq, base_ts = 0x3D7F0037, 1000, 160000
    for index in range(len(payload) // FRAME_SAMPLES):
        rtp = struct.pack("!BBHII", 0x80, (0x80 if index == 0 else 0) | 0,
                          base_seq + index, base_ts + index * FRAME_SAMPLES, ssrc)
        rtp += payload[index * FRAME_SAMPLES:(index + 1) * FRAME_SAMPLES]
        data = packet(rtp, index)
        usec = index * 20_000
        records.append(struct.pack("<IIII", 1_700_000_000 + usec // 1_000_000, usec % 1_000_000,
                                   len(data), len(data)) + data)
    out.write_bytes(b"".join(records))


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    write_pcap(folder / "dtmf_inband_3_7.pcap")
    write_wav(folder / "dtmf_inband_3_7_8k.wav")
