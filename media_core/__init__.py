"""RTP media: packets, codecs, tones and the one 20 ms media tick.

The chain is: UDP datagram -> ``rtp`` packet -> decoder (``g711``) -> PCM frames
-> the tick (mix, play out, record) -> encoder -> ``rtp`` packet -> UDP. Each
Cython kernel (``_g711.pyx``) has a NumPy twin (``g711``) with the same
signature, chosen once at import time; ``HOTLINE_NO_EXTENSIONS=1`` forces the
twin. Only the ``transport_*`` modules touch asyncio and sockets.

May import: the standard library, numpy, and PyAV where a codec needs it.
Nothing else of ours.
"""
