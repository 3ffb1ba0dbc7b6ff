"""Typed tools: ingest of CI material, log analysis, and (later) provider SDK wrappers."""
