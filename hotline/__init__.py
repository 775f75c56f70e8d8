"""The composition root: configuration, the ``hotline`` CLI and the wiring.

May import: every package of ours; nothing of ours imports it.
"""
