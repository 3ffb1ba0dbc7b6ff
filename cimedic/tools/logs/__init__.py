"""Log analysis: normalisation, candidate scanning, template mining, excerpt localisation."""
