"""Agent and task prose (YAML), loaded by the crew; Python only wires it."""
