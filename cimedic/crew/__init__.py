"""The CrewAI flow and its agents: they build on the deterministic analysis in ``cimedic.investigate``."""
