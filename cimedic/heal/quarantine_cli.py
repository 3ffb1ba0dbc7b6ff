"""``python -m cimedic.heal.quarantine``: export the list for other runners, record a run's results.

``export --format F``: the list in another runner's terms. Other runners have no "run it but never
fail the build", so every entry, whatever its mode, is excluded there (docs/quarantine.md shows the
line of build configuration that reads each output):

- ``surefire``: a Maven Surefire ``excludesFile`` (``pkg.Class#method``, Surefire 2.19.1+).
- ``gradle``: one ``excludeTestsMatching`` pattern a line (``pkg.Class.method``), comments with ``#``.
- ``junit``: a regex for the JUnit Platform ConsoleLauncher's ``--exclude-methodname`` (``pkg.Class#method``).
- ``go``: one ``go test -skip`` regexp (Go 1.20+); subtests by level (``^TestA$/^case_1$``).
- ``jest``: one ``--testNamePattern`` regex that matches every test name but the listed ones.

An entry the format cannot name (a pytest node id for Maven, a Java method for Go) is left out and
said so on stderr (and in a comment where the format has comments): never silently.

``record REPORT.xml...``: the JUnit reports of one run count toward release (``--release`` then
removes the entries that reached their passes in a row); the file is rewritten round-trip.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from cimedic.errors import InputError
from cimedic.heal.quarantine import PATH, Entry, load, record, release, save
from cimedic.heal.quarantine_names import Result

_GENERATED = f"# generated from {PATH} by `python -m cimedic.heal.quarantine export`: do not edit"
# JUnit 5 reports parameters and display names after the method: testX(String)[1], testX()
_JAVA_PARAMS = re.compile(r"(\(.*\))?(\[.*\])?$")
_GO_TEST = re.compile(r"(?:^|[./])((?:Test|Benchmark|Example|Fuzz)[^./]*(?:/.*)?)$")


def _java(test: str) -> tuple[str, str] | None:
    """(class, method) of a JUnit ``classname.name``; None for what is no Java method."""
    if "::" in test or "/" in test or " " in test:
        return None
    base = _JAVA_PARAMS.sub("", test)
    cls, dot, method = base.rpartition(".")
    return (cls, method) if dot and cls and method else None


def _go_quote(text: str) -> str:
    # Go's regexp.QuoteMeta: Python's re.escape also escapes characters RE2 refuses escaped.
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def _js_quote(text: str) -> str:
    return re.sub(r"([\\^$.*+?()\[\]{}|/])", r"\\\1", text)


def _java_lines(entries: list[Entry], left_out: list[str], separator: str) -> str:
    """One ``class<separator>method`` line per Java test; the rest left out, said in a comment."""
    lines = [_GENERATED]
    for entry in entries:
        found = _java(entry.test)
        if found is None:
            left_out.append(entry.test)
            lines.append(f"# left out (no Java class.method): {entry.test}")
        else:
            lines.append(f"{found[0]}{separator}{found[1]}")
    return "\n".join(lines) + "\n"


def surefire(entries: list[Entry], left_out: list[str]) -> str:
    return _java_lines(entries, left_out, "#")


def gradle(entries: list[Entry], left_out: list[str]) -> str:
    return _java_lines(entries, left_out, ".")


def junit(entries: list[Entry], left_out: list[str]) -> str:
    names = []
    for entry in entries:
        found = _java(entry.test)
        if found is None:
            left_out.append(entry.test)
        else:
            names.append(re.escape(f"{found[0]}#{found[1]}"))
    # A pattern that matches nothing when the list is empty, so the flag can always be passed.
    return f"^(?:{'|'.join(names)})$\n" if names else "^$\n"


def go(entries: list[Entry], left_out: list[str]) -> str:
    """Top-level ``|`` separates whole tests in Go's -skip, each split by ``/`` into levels."""
    alternatives = []
    for entry in entries:
        found = _GO_TEST.search(entry.test)
        if found is None:
            left_out.append(entry.test)
        else:
            alternatives.append("/".join(f"^{_go_quote(level)}$" for level in found.group(1).split("/")))
    return "|".join(alternatives) + "\n"


def jest(entries: list[Entry], left_out: list[str]) -> str:
    names = [_js_quote(e.test) for e in entries]
    # Jest runs the tests whose full name matches: everything but the listed names.
    return f"^(?!(?:{'|'.join(names)})$)\n" if names else ""


FORMATS: dict[str, Callable[[list[Entry], list[str]], str]] = {
    "surefire": surefire,
    "gradle": gradle,
    "junit": junit,
    "go": go,
    "jest": jest,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cimedic.heal.quarantine")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="the list as another runner's exclude file or pattern")
    export.add_argument("--format", required=True, choices=sorted(FORMATS))
    export.add_argument("--output", "-o", help="write here instead of stdout")
    count = commands.add_parser("record", help="count one run's JUnit reports toward release")
    count.add_argument("reports", nargs="+", type=Path, help="the run's JUnit XML reports")
    count.add_argument("--release", action="store_true", help="remove the entries that reached their passes")
    for command in (export, count):
        command.add_argument("--file", default=PATH, help=f"the quarantine list (default {PATH})")
    args = parser.parse_args(argv)
    try:
        return _export(args) if args.command == "export" else _record(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _export(args: argparse.Namespace) -> int:
    left_out: list[str] = []
    text = FORMATS[args.format](load(args.file).entries, left_out)
    for test in left_out:
        print(f"cimedic quarantine: {args.format} cannot name {test!r}; left out", file=sys.stderr)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _record(args: argparse.Namespace) -> int:
    from cimedic.tools.ingest.junit import parse_junit_file  # defusedxml, junitparser: only here

    qlist = load(args.file)
    results = [
        Result(f"{t.classname}.{t.name}" if t.classname else t.name, str(t.status), t.message)
        for report in args.reports
        for t in parse_junit_file(report)
    ]
    counts = record(qlist, results)
    released = release(qlist) if args.release else []
    save(qlist, args.file)
    for entry in qlist.entries:
        if entry.test in counts:
            print(f"{entry.test}: {entry.consecutive_passes} of {entry.passes_to_release} passes in a row")
    for entry in released:
        print(f"{entry.test}: released after {entry.consecutive_passes} passes in a row")
    return 0
