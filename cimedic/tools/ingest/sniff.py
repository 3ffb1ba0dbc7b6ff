"""Recognise what a file is from its first bytes: container format, and which CI wrote a log."""

from __future__ import annotations

import re

from cimedic.models import Platform

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
SNIFF_BYTES = 64 * 1024

_PLATFORM_MARKERS: tuple[tuple[Platform, re.Pattern[bytes]], ...] = (
    (Platform.GITLAB, re.compile(rb"section_start:\d+:|Running with gitlab-runner|^ERROR: Job failed", re.M)),
    (Platform.AZURE_DEVOPS, re.compile(rb"##\[section\]Starting: |Agent name: |##vso\[")),
    (Platform.GITHUB_ACTIONS, re.compile(rb"##\[group\]|Current runner version|##\[error\]")),
    (
        Platform.JENKINS,
        re.compile(
            rb"\[Pipeline\] |^Started by |^Finished: (?:SUCCESS|FAILURE|ABORTED|UNSTABLE)"
            rb"|^Building (?:in workspace|remotely on)",
            re.M,
        ),
    ),
    (Platform.TRAVIS, re.compile(rb"travis_fold:|travis_time:|Worker information|Done\. Your build exited")),
)


def detect_platform(head: bytes, tail: bytes = b"") -> Platform:
    sample = head + b"\n" + tail
    for platform, pattern in _PLATFORM_MARKERS:
        if pattern.search(sample):
            return platform
    return Platform.GENERIC


def looks_binary(head: bytes) -> bool:
    """Text logs have no NUL bytes and are mostly printable; anything else is not a log."""
    if not head:
        return False
    sample = head[:SNIFF_BYTES]
    if sample.count(b"\x00") > max(1, len(sample) // 1000):
        return True
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return control > len(sample) // 20
