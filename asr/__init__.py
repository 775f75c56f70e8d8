"""Streaming speech recognizers behind one interface (pocketsphinx, vosk).

The chain, per call: the IVR's listen step -> ``service.AsrSession``
(``start_utterance(context)``, ``feed`` 8 kHz frames buffered into 80 ms
chunks, ``finish_utterance``/``cancel_utterance``) -> ``worker_process`` (a
pipe to a worker process for pocketsphinx, which holds the GIL, or a queue to
a thread for vosk, which releases it) -> ``worker_loop`` (one decoder per
call, utterances numbered so stale audio and results are dropped) -> an
``engine.Decoder``: ``engine_pocketsphinx`` (the embedded English default:
``media_core.resample`` 8 -> 16 kHz, a JSGF grammar from ``grammar_jsgf`` or
a trigram LM from ``language_model`` per ``RecognitionContext``, with
``pronounce`` supplying phones for words cmudict lacks) or ``engine_vosk``
(Kaldi at 8 kHz, model found by ``models``) -> ``results.Hypothesis``
(partials, then one final with timed, scored ``Word``s) -> back on the event
loop through ``on_result``. ``service`` is the only module that touches
asyncio; everything below it is synchronous and testable without a loop.

May import: ``media_core``, the standard library, numpy and the recognizer
engines (pocketsphinx, vosk). Nothing else of ours.
"""
