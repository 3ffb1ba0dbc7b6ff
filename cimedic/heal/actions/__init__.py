"""One module per remediation kind, each a ``Healer``: plan, execute (never in a dry run), verify."""
