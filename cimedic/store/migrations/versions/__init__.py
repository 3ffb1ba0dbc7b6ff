"""One module per schema revision; ``cimedic.store.migrate.HEAD`` names the newest."""
