"""Local ingest: turn what a user has on disk into a Run plus the logs to analyse."""
