"""RTP media: packets, jitter buffers, codecs, DTMF, VAD, mixing, prompts, recording.

The chain, per stream, is: UDP datagram -> ``rtp`` packet -> ``receive`` path
(``rtp_stats`` RFC 3550 statistics, ``jitter_buffer``, RFC 4733 ``dtmf``) -> and
then, once per 20 ms for ALL streams at once, the ``tick``: one ``g711`` decode
per codec -> ``plc`` for lost frames -> in-band DTMF (``dtmf_inband`` over
``goertzel``) and ``vad`` -> ``prompt`` players and the ``mixer`` (bridges,
conferences with mix-minus, whisper, one ``mix`` kernel call) -> the
``recording_tap`` (caller left, what the caller heard right; written by one
thread through ``recording``) -> one ``g711`` encode per codec -> ``rtp`` ->
UDP. ``rtcp`` builds and parses reports, ``resample`` converts rates, ``tone``
makes test signals.

Each Cython kernel (``_g711``, ``_mix``, ``_goertzel``, ``_udp_batch``) has a
pure NumPy/Python twin with the same signature; ``extensions`` chooses once at
import time, and ``HOTLINE_NO_EXTENSIONS=1`` forces the twins. Only the
``transport_*`` modules touch asyncio and sockets.

May import: the standard library, numpy, PyAV and webrtcvad. Nothing else of ours.
"""
