"""Declarative speech IVR flows (YAML), prompts, barge-in and intent matching.

May import: ``asr``, ``media_core``, ``sip``, ``conversations``.
"""
