"""Mask secrets in CI log text before any of it is printed, stored or sent anywhere.

A :class:`Detector` reports spans of secret *values*; :class:`Redactor` merges overlapping spans and puts
``[REDACTED:<kind>]`` in their place, line by line so the ``\\n`` count never changes. Where a detect-secrets
plugin has a linear-time regex for a format its ``denylist`` is reused, imported on first use because
importing detect_secrets costs ~200 ms. Its keyword and npm rules are not: they start with ``\\w*`` / ``.+``,
go quadratic on a long line, and report a value without its position.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol


class Detector(Protocol):
    """One pluggable rule: ``find`` yields ``(start, end)`` spans of secret values in ``text``."""

    kind: str

    def find(self, text: str) -> Iterable[tuple[int, int]]: ...


# Values next to a secret-ish key that say nothing secret: flags, states in error messages ("invalid
# token: expired"), auth scheme names and GitHub Actions permission levels (`id-token: write`).
_NOT_SECRET = re.compile(
    r"(?i:true|false|yes|no|on|off|null|none|nil|undefined|read|write|required|optional|not|set|unset|empty"
    r"|valid|invalid|expired|revoked|missing|unknown|masked|hidden|redacted|bearer|basic|token|digest|ntlm)"
)
# Variable references (`$X`, `%X%`, `${X}`), templates, YAML block indicators and paths.
_NOT_SECRET_START = ("$", "%", "<", "{", "|", ">", "/", "./", "../", "~/")


def _plausible(value: str) -> bool:
    """False for values that only refer to a secret (``$TOKEN``, a path, a URL) or are already masked."""
    return not (
        _NOT_SECRET.fullmatch(value)
        or "[REDACTED:" in value
        or not value.strip("*xX#.")
        or value.startswith(_NOT_SECRET_START)
        or "://" in value
    )


def _assigned_ok(value: str) -> bool:
    # Short numbers after a key are counts, not passwords: a test summary says `pass: 10 fail: 2`.
    return _plausible(value) and not (value.isdigit() and len(value) <= 6)


def _valid_jwt(token: str) -> bool:
    from detect_secrets.plugins.jwt import JwtTokenDetector

    return bool(JwtTokenDetector.is_formally_valid(token))


class PatternDetector:
    """Regex rule. The secret is the first named group that took part in the match, else ``group``.

    ``plugin`` names a detect-secrets plugin (module, class) whose denylist, or its rules at ``rules``, is
    appended on first use. ``extend`` lengthens a fixed-length match to the end of the token so no tail of a
    longer token leaks. ``caseless`` patterns are written in lower case and run on a lower-cased copy of
    the text, about three times faster than ``re.IGNORECASE`` on long logs.
    """

    def __init__(
        self,
        kind: str,
        *patterns: re.Pattern[str],
        plugin: tuple[str, str] | None = None,
        rules: Sequence[int] = (),
        group: int = 0,
        extend: re.Pattern[str] | None = None,
        accept: Callable[[str], bool] | None = None,
        caseless: bool = False,
    ) -> None:
        self.kind, self.group, self.extend, self.accept, self.caseless = kind, group, extend, accept, caseless
        self._own, self._plugin, self._rules = patterns, plugin, tuple(rules)

    @functools.cached_property
    def _patterns(self) -> tuple[re.Pattern[str], ...]:
        if self._plugin is None:
            return self._own
        module, name = self._plugin
        plugin: Any = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)()
        denylist = list(plugin.denylist)
        return self._own + tuple(denylist[i] for i in self._rules or range(len(denylist)))

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        haystack, patterns = text, self._patterns
        if self.caseless:
            haystack = text.lower()
            if len(haystack) != len(text):  # a few characters (e.g. "İ") grow when lower-cased
                haystack, patterns = text, tuple(re.compile(p.pattern, p.flags | re.I) for p in patterns)
        for pattern in patterns:
            pos = 0
            # search() from the end of the last span rather than finditer(): an extended span must not be
            # rescanned, or a line of repeated prefixes ("ghp_ghp_...") becomes quadratic.
            while (match := pattern.search(haystack, pos)) is not None:
                names = [n for n in pattern.groupindex if match.start(n) >= 0]
                start, end = match.span(names[0] if names else self.group)
                if self.extend is not None and (tail := self.extend.match(text, end)) is not None:
                    end = tail.end()
                if start < end and (self.accept is None or self.accept(text[start:end])):
                    yield start, end
                pos = max(match.end(), end, pos + 1)


_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")
# With no END marker in reach (an excerpt cut mid-key) only the following lines that end in key material
# are taken; up to two leading words allow for the timestamp or `remote:` prefixes CI runners add.
_PEM_LINES = re.compile(r"(?:\r?\n[^\S\n]*(?:\S+[^\S\n]+){0,2}[A-Za-z0-9+/=]{16,}[^\S\n]*)*")
_PEM_MAX_BODY = 64 * 1024


class PemPrivateKeyDetector:
    """The body between BEGIN/END ... PRIVATE KEY markers, which stay (detect-secrets flags only BEGIN)."""

    kind = "private-key"

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        begins = list(_PEM_BEGIN.finditer(text))
        for begin, after in zip(begins, [*begins[1:], None], strict=False):
            # The END must match the label and come before the next BEGIN, so a key cut short never pairs
            # with the END of a later key; bounding the search by the next BEGIN also keeps this linear.
            limit = min(after.start() if after else len(text), begin.end() + _PEM_MAX_BODY)
            end = text.find(f"-----END {begin.group(1)}-----", begin.end(), limit)
            if end < 0:
                lines = _PEM_LINES.match(text, begin.end(), limit)
                end = lines.end() if lines else begin.end()
            yield begin.end(), end


# Caseless patterns are lower case: they run on lower-cased text (see PatternDetector).
_ASSIGN = r"""\\?["']?[^\S\n]*(?::=|=>|=(?!=)|:(?=[^\S\n]|\\?["']))[^\S\n]*"""
_VALUE = r"""(?:\\?"(?P<dq>[^"\n]*?)\\?"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s"'`,;&]+))"""
# A key ending in one of these names a secret whatever the value looks like. `pass` and `pat` must start a
# word so that `bypass` and `path` do not count. Lookbehinds come after the literal, as in _edge().
_KEY_WORDS = (
    r"passw(?:or)?d|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key"
    r"|signature|authorization|credentials?|pat(?<![a-z0-9]pat)"
)
_KEY_TAIL = r"(?:[_.-]?(?:key|base|value))?(?![a-z0-9_.-])"
_PASSWORD_KEY = rf"(?:{_KEY_WORDS}){_KEY_TAIL}"
# A bare `pass` key counts only when assigned with `=`: `PASS: test_name` is a test runner's result line.
_PASS_KEY = rf"pass(?<![a-z0-9]pass){_KEY_TAIL}[^\S\n]*=(?!=)[^\S\n]*"
_PASSWORD = re.compile(rf"(?:{_PASSWORD_KEY}{_ASSIGN}|{_PASS_KEY}){_VALUE}")
_PASSWORD_FLAG = re.compile(
    rf"--(?<![\w-]--)[a-z0-9_-]*?(?:{_KEY_WORDS}|pass(?<![a-z0-9]pass)){_KEY_TAIL}(?:=|[^\S\n]+)(?!-){_VALUE}"
)
_HEADER = r"""authorization\\?["']?[^\S\n]*[:=][^\S\n]*\\?["']?"""
_BEARER = re.compile(rf"(?:bearer(?<!\wbearer)|{_HEADER}token)[^\S\n]+(?P<v>[a-z0-9._~+/-]{{8,}}=*)")
_BASIC_HEADER = re.compile(rf"{_HEADER}basic[^\S\n]+(?P<v>[a-z0-9+/]{{6,}}={{0,2}})")
_CURL_USER = re.compile(r"""[^\S\n](?:-u|--user)[^\S\n]+["']?[^\s:"']+:(?P<v>[^\s"'@]+)""")
# `redis://:PASSWORD@host` has no user, which the detect-secrets rule requires.
_URL_NO_USER = re.compile(r"://:(?P<v>[^\s:/?#\[\]@]+)@")
_AZURE_PAT = re.compile(
    r"://(?:[^\s:/@]*:(?P<v>[^\s:/@]+)|(?P<w>[A-Za-z0-9]{52,}))@(?:[\w-]+\.)*(?:dev\.azure|visualstudio)\.com"
)
_AWS_SECRET = re.compile(rf"aws_?secret_?(?:access_?)?key{_ASSIGN}\\?[\"']?(?P<v>[a-z0-9/+]{{40}})(?![a-z0-9/+=])")
_NPMRC_AUTH = re.compile(r"""_auth(?<![A-Za-z0-9]_auth)(?:Token)?[^\S\n]*=[^\S\n]*["']?(?P<v>[^\s"']+)""")
_AZURE_KEY = re.compile(r"(?:Account|SharedAccess)Key=(?P<v>[A-Za-z0-9+/]{20,}=*)")
_AZURE_SAS = re.compile(r"[?&]sig=(?P<v>[A-Za-z0-9%+/=]{16,})")
_GITHUB_PAT = re.compile(r"github_pat_\w{22,}")
_STRIPE_TEST = re.compile(r"[rs]k_test_[0-9A-Za-z]{24,}")
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_]*")


def _edge(prefix: str, body: str) -> re.Pattern[str]:
    """``prefix`` + ``body`` as a whole token; the lookbehind follows the literal to keep prefix search."""
    return re.compile(rf"{prefix}(?<![A-Za-z0-9_-]{prefix}){body}(?![A-Za-z0-9_-])")


def _has_signal(value: str) -> bool:
    # Prose like "Bearer realm=" or "bearer authentication" has no digits or capitals after the first char.
    return _plausible(value) and any(c.isdigit() or c.isupper() for c in value[1:])


# High-entropy rule. A value counts if it is assigned to a key containing a secret-ish word (>= 16 chars)
# or stands alone (>= 32 chars), AND it is made only of base64/url-safe characters, mixes upper case, lower
# case and digits, is not hex (git SHAs, digests) or a UUID (hex once dashes go), is not a checksum behind
# a sha512-/sha256:/h1:/ssh-rsa prefix, has Shannon entropy of at least 0.75*log2(len) capped at 4.5 bits,
# and switches between lower/upper/digit at >= 40% of adjacent alphanumerics. Random base62 does so ~62% of
# the time (under 1% of 32-char samples fall below 0.4); CamelCase names and paths stay under 0.35.
_ENTROPY_KEY = r"(?:token|secret|key|passw|pwd|auth|credential|private|signature|api|access)"
_ENTROPY_ASSIGNED = re.compile(rf"{_ENTROPY_KEY}[a-z0-9_.-]{{0,30}}?{_ASSIGN}{_VALUE}")
# `=` only as trailing padding, so `NAME=value` splits into two runs.
_ENTROPY_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}")
_CHECKSUM_BEFORE = re.compile(r"(?i:sha\d{0,3}|md5|h1|ssh-\w+|ecdsa-[\w-]+)[-:= ]$")
_CHECKSUM_START = re.compile(r"(?i:sha\d{1,3}|md5)-")
_B64_CHARS = re.compile(r"[A-Za-z0-9+/=_-]+")
_HEX_CHARS = re.compile(r"[0-9a-fA-F-]+")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_CLASS_SWITCH = re.compile(r"[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])")


@functools.cache
def _entropy() -> Callable[[str], float]:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    return Base64HighEntropyString().calculate_shannon_entropy


def _looks_random(value: str, min_len: int) -> bool:
    if len(value) < min_len or value.isupper() or value.islower() or not any(c.isdigit() for c in value):
        return False
    if not _B64_CHARS.fullmatch(value) or _HEX_CHARS.fullmatch(value):
        return False
    alnum = _NON_ALNUM.sub("", value)
    if len(_CLASS_SWITCH.findall(alnum)) < 0.4 * (len(alnum) - 1):
        return False
    return _entropy()(value) >= min(4.5, 0.75 * math.log2(len(value)))


class HighEntropyDetector:
    """Random-looking values that no format-specific rule knows; see the rule above for what counts."""

    kind = "high-entropy"

    def __init__(self) -> None:
        self._assigned = PatternDetector(self.kind, _ENTROPY_ASSIGNED, caseless=True)
        self._assigned.accept = lambda value: _looks_random(value, 16)

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        yield from self._assigned.find(text)
        for match in _ENTROPY_RUN.finditer(text):
            start, value = match.start(), match.group()
            if _CHECKSUM_START.match(value) or _CHECKSUM_BEFORE.search(text, max(0, start - 24), start):
                continue
            if _looks_random(value, 32):
                yield match.span()


_P = PatternDetector
# Listed most specific first: where spans overlap, the earliest detector here names the merged mask.
DEFAULT_DETECTORS: tuple[Detector, ...] = (
    PemPrivateKeyDetector(),
    _P("github-token", _GITHUB_PAT, plugin=("github_token", "GitHubTokenDetector"), extend=_TOKEN_TAIL),
    _P("gitlab-token", plugin=("gitlab_token", "GitLabTokenDetector")),
    _P("slack-webhook", plugin=("slack", "SlackDetector"), rules=[1]),
    _P("slack-token", plugin=("slack", "SlackDetector"), rules=[0]),
    _P("aws-access-key", plugin=("aws", "AWSKeyDetector"), rules=[0]),
    _P("aws-secret-key", _AWS_SECRET, plugin=("aws", "AWSKeyDetector"), rules=[1], group=1, caseless=True),
    _P("npm-token", _edge("npm_", "[A-Za-z0-9]{36}"), _NPMRC_AUTH, accept=_plausible),
    _P("pypi-token", plugin=("pypi_token", "PypiTokenDetector")),
    _P("google-api-key", _edge("AIza", "[0-9A-Za-z_-]{35}")),
    _P("stripe-key", _STRIPE_TEST, plugin=("stripe", "StripeDetector"), extend=_TOKEN_TAIL),
    _P("azure-storage-key", _AZURE_KEY),
    _P("azure-devops-pat", _AZURE_PAT, accept=_plausible),
    _P("azure-sas-token", _AZURE_SAS),
    _P("jwt", _edge("eyJ", r"[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*"), accept=_valid_jwt),
    _P("basic-auth", plugin=("basic_auth", "BasicAuthDetector"), group=1),
    _P("basic-auth", _CURL_USER, _URL_NO_USER, accept=_plausible),
    _P("basic-auth", _BASIC_HEADER, accept=_plausible, caseless=True),
    _P("bearer", _BEARER, accept=_has_signal, caseless=True),
    _P("password", _PASSWORD, _PASSWORD_FLAG, accept=_assigned_ok, caseless=True),
    HighEntropyDetector(),
)
# Each extra pass only runs when the previous one masked more, so this bounds hostile or buggy detectors.
_MAX_PASSES = 4
# A mask replaces each line's content, keeping newlines and the whitespace around it.
_LINE_CONTENT = re.compile(r"\S(?:[^\n]*\S)?")


def _mask(segment: str, kind: str) -> str:
    return _LINE_CONTENT.sub(lambda _: f"[REDACTED:{kind}]", segment)


class Redactor:
    """Runs detectors over text and masks what they find; earlier detectors name overlapping masks."""

    def __init__(self, detectors: Sequence[Detector] | None = None) -> None:
        self._detectors: tuple[Detector, ...] = tuple(DEFAULT_DETECTORS if detectors is None else detectors)

    def redact(self, text: str) -> str:
        return self.redact_with_kinds(text)[0]

    def redact_with_kinds(self, text: str) -> tuple[str, list[str]]:
        """The redacted text and the kinds of the masks applied, in the order they were first applied."""
        out, kinds = self._pass(text)
        if out == text:
            return out, kinds
        # A mask can remove the context that kept a neighbour unmasked (a word boundary, a `h1:` checksum
        # prefix), so redacting the output again could mask more. Re-running the detectors on just the
        # lines that hold a mask until they stop changing makes redaction idempotent at little cost.
        lines = out.split("\n")
        for i, line in enumerate(lines):
            for _ in range(_MAX_PASSES if "[REDACTED:" in line else 0):
                again, more = self._pass(line)
                if again == line:
                    break
                lines[i] = line = again
                kinds += [kind for kind in more if kind not in kinds]
        return "\n".join(lines), kinds

    def _pass(self, text: str) -> tuple[str, list[str]]:
        spans: list[tuple[int, int, int]] = []
        for rank, detector in enumerate(self._detectors):
            for start, end in detector.find(text):
                start, end = max(start, 0), min(end, len(text))
                if start < end:
                    spans.append((start, end, rank))
        merged: list[list[int]] = []
        for start, end, rank in sorted(spans):
            if merged and start < merged[-1][1]:
                merged[-1][1:] = [max(merged[-1][1], end), min(merged[-1][2], rank)]
            else:
                merged.append([start, end, rank])
        out: list[str] = []
        kinds: list[str] = []
        cursor = 0
        for start, end, rank in merged:
            kind = self._detectors[rank].kind
            out += [text[cursor:start], _mask(text[start:end], kind)]
            kinds += [] if kind in kinds else [kind]
            cursor = end
        out.append(text[cursor:])
        return "".join(out), kinds


@functools.cache
def _default_redactor() -> Redactor:
    return Redactor()


def redact(text: str) -> str:
    """``text`` with every secret the default detectors know replaced by ``[REDACTED:<kind>]``."""
    return _default_redactor().redact(text)
