"""Default configuration shipped with cimedic (policy, limits); users override it."""
