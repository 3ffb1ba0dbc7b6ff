"""Run history: ingest from CI providers and CSV exports into the history store, and read it as frames.

The store itself (tables, migrations, ``HistoryStore``) is ``cimedic.store.history``.
"""
