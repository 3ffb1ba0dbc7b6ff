"""How the quarantine list names tests, and what a run's result of one means for its release.

Standard library only: the pytest plugin imports it inside users' test processes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# pytest shows these reasons, and a JUnit report keeps them as the <skipped> message: a run-mode
# failure (reported as skipped, type pytest.xfail) is then told from a test skipped for its own reasons.
SKIP_MARK = "cimedic quarantine (skip)"
RUN_MARK = "cimedic quarantine (run)"


@dataclass(frozen=True)
class Result:
    """One test's result in one run (a JUnit case or a pytest report)."""

    test: str
    status: str  # passed, failed, error, skipped
    message: str | None = None


def junit_id(nodeid: str) -> str:
    """The JUnit ``classname.name`` pytest's junitxml writes for a node id (its mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    return ".".join(names) + bracket + params


def aliases(test: str) -> set[str]:
    """The names one test goes by: as written, its JUnit form if it is a node id, each without parameters."""
    forms = {test, junit_id(test)} if "::" in test else {test}
    return forms | {f.partition("[")[0] for f in forms}


def same_test(listed: str, name: str) -> bool:
    """Does the list's ``listed`` name the test a report calls ``name``? A bare name matches any class."""
    if aliases(listed) & aliases(name):
        return True
    bare = not any(c in listed for c in ".:/")
    return bare and any(n.endswith(("." + listed, "::" + listed)) for n in aliases(name))


def outcome(result: Result) -> bool | None:
    """True: a pass, False: a failure (a run-mode xfail is one), None: did not run."""
    if result.status == "passed":
        return True
    if result.status in ("failed", "error"):
        return False
    return False if (result.message or "").startswith(RUN_MARK) else None
