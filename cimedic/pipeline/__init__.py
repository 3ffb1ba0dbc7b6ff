"""In-pipeline use: ``cimedic ci-report`` runs inside a failed CI job and reports on the run it is part of."""
