"""The unified conversation store (SQLite by default, PostgreSQL to scale out).

May import: the standard library and database drivers. Nothing else of ours.
"""
