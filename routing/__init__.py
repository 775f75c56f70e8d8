"""Agents, queues, ACD strategies and the hand-off with context.

May import: ``sip``, ``media_core``, ``conversations``.
"""
