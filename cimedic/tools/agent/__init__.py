"""Typed, read-only tools an LLM agent may call during an investigation.

Each tool is one module: a pydantic ``Args`` model and an ``AgentTool`` subclass whose ``answer``
returns JSON-able data. The shared base bounds and redacts what goes back to the model and turns
any failure into data, so an agent sees ``{"error": ...}`` instead of a traceback. No tool writes:
``propose_action`` only records a proposal in the workspace for the policy engine to judge.
"""
