"""Per-call recordings: registration, retention and post-call transcription.

The chain, per call: the media core writes the stereo recording (caller left,
what the caller heard right) and closes it at hang-up -> ``registry`` reads the
file's facts (``audio_file.probe``) and registers it in the conversation store,
which queues its transcription job in the same transaction -> ``runner`` (the
durable job loop on the event loop: claim with a lease, renew it, complete
exactly once, or fail with a backed-off retry) hands the file to
``transcribe_pool`` (spawned worker processes, the recognizer loaded once per
process) -> ``transcribe`` (``audio_file.read_stereo`` -> ``utterances``: the
WebRTC VAD cuts each channel into spans -> an ``asr`` decoder per channel ->
segments whose words are timed in the recording) -> back to the store, which
redacts and indexes them for search. ``retention`` deletes audio older than the
configured days and marks it deleted; transcripts stay searchable.
``orphans`` registers recordings of calls a crash cut off (never hung up).

Sans-IO: ``utterances``, ``retention``'s cutoff and path checks,
``runner.retry_delay_s``. Thin I/O shells: ``registry``, ``runner``,
``retention.RetentionSweep``, ``orphans``, ``transcribe_pool``.

May import: ``asr``, ``media_core``, ``conversations``.
"""
