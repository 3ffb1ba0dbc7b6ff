"""Guarded self-healing: a diagnosis becomes a plan, the plan meets the policy, what is allowed runs
(dry-run unless told otherwise), its result is verified, and outcomes teach the planner."""
