"""The known-failure knowledge base (YAML entries users can edit and extend)."""
