"""Streaming speech recognizers behind one interface (vosk, pocketsphinx).

May import: ``media_core``, the standard library and the recognizer engines.
"""
