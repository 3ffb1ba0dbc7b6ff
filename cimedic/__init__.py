"""cimedic: CI/CD triage and self-healing. Explains why a CI run failed, offline first."""

__version__ = "0.1.0"
