"""pytest plugin: honour the quarantine list (``.cimedic/quarantine.yaml``) in a test run.

Load it with ``-p cimedic.pytest_quarantine`` (or through its ``pytest11`` entry point). A ``skip``
entry's test is skipped with the entry's reason; a ``run`` entry's test runs as ``xfail(strict=False)``:
a failure is reported xfailed and a pass xpassed, neither fails the build. The terminal summary ends
with one line saying what was quarantined.

It runs inside users' test processes, so it imports only the list's model (pydantic, ruamel.yaml).
A list that does not validate stops the run with a usage error: ignoring it would silently
un-quarantine every test in it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cimedic.heal.quarantine import PATH, Entry, QuarantineError, load
from cimedic.heal.quarantine_names import RUN_MARK, SKIP_MARK, aliases

PROPERTY = "cimedic_quarantine"  # in the reports (so xdist's controller sees it) and the JUnit XML


class _Quarantine:
    """The per-run state and the hooks that use it (registered by ``pytest_configure``)."""

    def __init__(self, config: pytest.Config, path: Path, entries: list[Entry], run_all: bool) -> None:
        self.config = config
        self.path = path
        self.entries = entries
        self.run_all = run_all
        self.by_name: dict[str, Entry] = {}
        for entry in entries:
            for name in aliases(entry.test):
                self.by_name.setdefault(name, entry)
        self.collected = False  # stays False on xdist's controller: its workers collect
        self.matched: set[str] = set()
        self.reported: dict[str, str] = {}  # node id -> mode

    def entry(self, item: pytest.Item) -> Entry | None:
        for name in sorted(aliases(item.nodeid), key=len, reverse=True):  # the exact id before its base
            if name in self.by_name:
                return self.by_name[name]
        # A bare name (no path, class or module) quarantines the function wherever it is.
        return self.by_name.get(item.name) or self.by_name.get(item.name.partition("[")[0])

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected = True
        for item in items if self.entries else ():
            entry = self.entry(item)
            if entry is None:
                continue
            self.matched.add(entry.test)
            mode = "run" if self.run_all else entry.mode
            if mode == "skip":
                item.add_marker(pytest.mark.skip(reason=f"{SKIP_MARK}: {entry.reason}"))
            else:
                item.add_marker(pytest.mark.xfail(reason=f"{RUN_MARK}: {entry.reason}", strict=False))
            item.user_properties.append((PROPERTY, mode))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Counted from reports, not items: under xdist the controller never sees the items.
        for key, value in report.user_properties:
            if key == PROPERTY:
                self.reported[report.nodeid] = str(value)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.entries:
            return
        modes = list(self.reported.values())
        root = self.config.rootpath
        where = self.path.relative_to(root) if self.path.is_relative_to(root) else self.path
        line = f"cimedic quarantine ({where}): {modes.count('skip')} skipped, {modes.count('run')} run as xfail"
        unmatched = len(self.entries) - len(self.matched)
        if self.collected and unmatched:
            line += f"; {unmatched} listed test(s) not collected"
        terminalreporter.write_sep("-", line)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cimedic", "cimedic test quarantine")
    group.addoption(
        "--cimedic-quarantine",
        metavar="PATH",
        default=None,
        help=f"the quarantine list (default: {PATH} under the rootdir; without it nothing is quarantined)",
    )
    group.addoption(
        "--cimedic-quarantine-run-all",
        action="store_true",
        default=False,
        help="run skip-mode entries too (as non-strict xfail), so a scheduled job can count their passes",
    )


def pytest_configure(config: pytest.Config) -> None:
    option = config.getoption("--cimedic-quarantine")
    path = Path(option) if option else config.rootpath / PATH
    if option and not path.is_file():
        raise pytest.UsageError(f"{path}: no such quarantine list (--cimedic-quarantine)")
    try:
        entries = load(path).entries
    except QuarantineError as exc:
        raise pytest.UsageError(str(exc)) from None
    run_all = bool(config.getoption("--cimedic-quarantine-run-all"))
    config.pluginmanager.register(_Quarantine(config, path, entries, run_all), "cimedic-quarantine-run")
