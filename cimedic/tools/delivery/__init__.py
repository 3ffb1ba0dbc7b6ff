"""Delivery performance from run history: DORA's four keys."""
