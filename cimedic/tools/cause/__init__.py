"""Cause classification: the signals an investigation gathers, and the trained model over them."""
