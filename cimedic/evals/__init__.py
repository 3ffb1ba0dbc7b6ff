"""The offline evaluation harness and its recorded incidents."""
