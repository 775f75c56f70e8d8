"""Per-call recordings, post-call transcription, indexing and search.

May import: ``asr``, ``media_core``, ``conversations``.
"""
