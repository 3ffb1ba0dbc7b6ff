"""Incident memory: past resolved CI incidents, found again by meaning when a failure looks alike.

Nothing heavy is imported here or by the submodules at import time (chromadb, torch, onnxruntime
load inside the functions that need them), so ``cimedic investigate`` pays for them only when the
memory holds something to search.
"""
