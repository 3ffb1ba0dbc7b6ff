"""How much a single cleaned log line says about a failure, and what kind of failure.

Each rule is a regex with a weight (how specific the line is), an optional category hint and the
reason shown as evidence. Specific shapes (a compiler diagnostic, an assertion, a resolver error)
outrank generic words ("error", "failed"); trailer lines that only say *that* something failed
(exit codes, "BUILD FAILED") are recognised so the excerpt can skip past them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cimedic.models import Category


class Kind(StrEnum):
    SPECIFIC = "specific"
    GENERIC = "generic"
    TRAILER = "trailer"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    weight: float
    kind: Kind
    category: Category | None
    why: str


def _r(
    name: str, regex: str, weight: float, kind: Kind, category: Category | None, why: str, *, icase: bool = False
) -> Rule:
    return Rule(name, re.compile(regex, re.IGNORECASE if icase else 0), weight, kind, category, why)


S, G, T = Kind.SPECIFIC, Kind.GENERIC, Kind.TRAILER
C = Category

RULES: tuple[Rule, ...] = (
    # --- compile ---------------------------------------------------------------------------------
    _r("compiler-diagnostic", r"^\S+?:\d+(?::\d+)?:\s*(?:fatal\s+)?error\b", 10, S, C.COMPILE, "compiler error"),
    _r("coded-error", r"\berror(?:\[E\d{4}\]|\s+TS\d+|\s+CS\d{4}|\s+FS\d{4})", 10, S, C.COMPILE, "compiler error"),
    _r("maven-compile", r"^\[ERROR\] \S+\.(?:java|kt|scala|groovy):\[?\d+", 10, S, C.COMPILE, "compiler error"),
    _r("javac", r"\.java:\d+: error:", 10, S, C.COMPILE, "compiler error"),
    _r(
        "compile-words",
        r"\b(?:cannot find symbol|undefined reference to|undeclared identifier|was not declared"
        r"|incompatible types|no matching function|expected ';'|compilation error"
        r"|linker command failed|ld returned \d+ exit status|SyntaxError|ParseError"
        r"|IndentationError|type mismatch|not a member of|No instance for|Couldn't match|Variable not in scope"
        r"|^! (?:Undefined control sequence|LaTeX Error|Missing|Emergency stop))",
        9,
        S,
        C.COMPILE,
        "build/compile error",
        icase=False,
    ),
    # --- lint (before tests: an eslint "✖ 2 problems" line is a checker's, not a test's) ------------
    _r(
        "lint",
        r"\b\d+ offenses? detected|\boffenses?\b.*\bdetected\b|would reformat|Diff in |not properly formatted"
        r"|needs? formatting|\d+ problems? \(\d+ errors?|Lint(?:ing)? (?:errors?|failed)|style (?:violation|check)"
        r"|Checkstyle|\bSC\d{4}\b|^\S+:\d+:\d+: [CWEFR]: \S|^\S+:\d+:\d+: [EWFC]\d{3}\b|\(Severity: \d\)"
        r"|coverage .{0,40}(?:below|less than|threshold|not met)|missing .{0,30}(?:license|copyright) header"
        r"|include guard|(?:size|budget) limit (?:has )?exceeded|is not in alphabetical order"
        r"|not in (?:alphabetical )?order|file is not \w+ed\b|line (?:is )?(?:too long|longer than \d+)"
        r"|--check-formatted|formatting check failed"
        r"|\((?:gofmt|goimports|golint|vet|misspell|errcheck|ineffassign|unconvert|staticcheck|lll|deadcode)\)\s*$",
        8,
        S,
        C.LINT,
        "checker reported a violation",
        icase=True,
    ),
    # xcpretty marks build errors with a cross mark (and test failures with ✗, below).
    _r("xcpretty-error", r"\u274c\s+\S", 9, S, C.COMPILE, "build error"),
    # --- tests -----------------------------------------------------------------------------------
    _r(
        "test-fail-marker",
        r"^\s*(?:---\s+)?FAIL(?:ED)?\b[:\s]|^\s*FAIL\s*$|\bFAILED\s+\S+::|\*\*\* FAILED \*\*\*|\S\s{2,}FAIL(?:ED)?\s*$"
        r"|^_+ ERROR (?:collecting|at setup of|at teardown of) |Dubious, test returned [1-9]|^Failed \d+/\d+ subtests",
        9,
        S,
        C.TEST,
        "test reported as failed",
    ),
    _r(
        "assertion",
        r"AssertionError|AssertionFailedError|ComparisonFailure|\bassert(?:ion)?\s+failed|Failed asserting"
        r"|Expected .{0,200}(?:but (?:was|got)|to (?:equal|be|eq|include|match|have)|, got)|expected:? .{0,200}"
        r"(?:but was|got|actual)|Expected and actual|to eventually|Minitest::Assertion|expected \S.* to \S",
        9,
        S,
        C.TEST,
        "assertion failed",
        icase=True,
    ),
    _r("pytest-E", r"^E\s{2,}\S", 9, S, C.TEST, "assertion failed"),
    _r(
        "test-failure-header",
        r"^\s*(?:Failure/Error:|Failures?:\s*$|Errors?:\s*$|Failed examples:|"
        r"not ok \d+|\[-\] |\d+\) (?:test\w*|\S+Test\b|[A-Z]\w+(?:[.#:]\w+)+)|\u2717|\u2716|\u2718|\u00d7 )",
        8,
        S,
        C.TEST,
        "failed test",
    ),
    _r(
        "summary",
        r"\b(?:Tests? run:.*(?:Failures|Errors): [1-9]|[1-9]\d* (?:failed|failing|failures?|errors?|offenses?)\b"
        r"|Tests? failed|FAILED \((?:failures|errors)=|^FAILURES!$|Test Suites: .*failed|One or more tests failed"
        r"|Found \d+ errors?|Compilation failed|Could not compile|error: could not compile"
        r"|did not pass validation|\*\*\* \d+ TESTS? FAILED)",
        1.5,
        G,
        C.TEST,
        "summary of failures",
    ),
    _r(
        "traceback",
        r"Traceback \(most recent call last\)|^\s*panic: |panicked at |Exception in thread|Unhandled exception"
        r"|^PHP (?:Fatal|Parse) error: |^\s*\*\* \(\w+(?:\.\w+)*(?:Error|Exception)\)",
        8,
        S,
        None,
        "exception raised",
    ),
    _r(
        "test-timeout",
        r"timeout of \d+ ?ms exceeded|timetrap_timeout|Tests? timed out|test timed out"
        r"|TimeoutException: \d",
        8,
        S,
        C.TEST,
        "a test ran past its own time limit",
        icase=True,
    ),
    # --- dependency ------------------------------------------------------------------------------
    _r(
        "dependency",
        r"Could not (?:resolve(?! host)|find artifact|transfer artifact|find a version|find any version|"
        r"download|find gem|find com\.|find org\.)|No matching distribution|ResolutionImpossible|version solving failed"
        r"|ERESOLVE|ETARGET|E404|PackagesNotFoundError|not available from current channels|required but not available"
        r"|Unable to (?:resolve|find|locate) (?:package|dependency|version)|Could NOT find|unmet dependenc"
        r"|Gem::\w+Error|Bundler::\w+Error|Could not find .* in any of the sources|checksum mismatch|hash mismatch"
        r"|dependency (?:resolution|conflict)|conflicting dependencies|No package .* available|Unable to locate package"
        r"|ModuleNotFoundError|ImportError|No module named|cannot load such file|Cannot find module|LoadError"
        r"|Failed to resolve (?:dependenc|artifact|package|module|import|version)|couldn't find package"
        r"|package .* (?:not found|does not exist)|Failed building wheel",
        9,
        S,
        C.DEPENDENCY,
        "dependency could not be resolved/installed",
        icase=True,
    ),
    # --- infra -----------------------------------------------------------------------------------
    _r(
        "network",
        r"Connection (?:refused|reset|timed out)|Could not resolve host|Temporary failure in name resolution"
        r"|Name or service not known|Network is unreachable|Service Unavailable"
        r"|\b50[234] (?:Bad Gateway|Service|Gateway)"
        r"|rate limit(?:ed| exceeded)|ECONNRESET|ETIMEDOUT|ECONNREFUSED|EAI_AGAIN|Failed to connect to|RPC failed"
        r"|early EOF|remote end hung up|\b(?:SSL|TLS)\b.{0,40}(?:error|fail|alert|handshake|verif)|certificate verify"
        r"|certificate (?:has expired|is not trusted)|Could not create connection|Connect timeout|Net::\w*Timeout"
        r"|ReadTimeout|Failed to fetch|Hash Sum mismatch|unable to access '|No route to host"
        r"|The requested URL returned error|fatal alert|Received fatal alert|Connection aborted",
        8,
        S,
        C.INFRA,
        "network or service failure",
    ),
    _r(
        "http-status",
        r"\b(?:40[134]|410|429|50[0234])\b(?!\.).{0,20}https?://|https?://\S+.{0,40}\b(?:40[134]|410|429|50[0234])\b",
        6,
        S,
        None,
        "URL answered with an HTTP error",
    ),
    # --- timeout ---------------------------------------------------------------------------------
    _r(
        "timeout",
        r"No output has been received in the last|exceeded the maximum (?:execution )?time"
        r"|has timed out|timed out after|job .* timed out"
        r"|execution expired|deadline exceeded",
        9,
        S,
        C.TIMEOUT,
        "time limit exceeded",
        icase=True,
    ),
    # --- resource --------------------------------------------------------------------------------
    _r(
        "resource",
        r"\bKilled\b(?:\s{2,}|\s*$)|\d+ Killed\b|signal 9\b|SIGKILL|exit code 137|Out of memory|OutOfMemoryError"
        r"|Cannot allocate memory|MemoryError|No space left on device|ENOSPC|Too many open files|std::bad_alloc"
        r"|heap out of memory|JavaScript heap|GC overhead limit|oom-kill|Segmentation fault|core dumped",
        9,
        S,
        C.RESOURCE,
        "resource exhausted or process killed",
        icase=True,
    ),
    # --- config ----------------------------------------------------------------------------------
    _r(
        "config",
        r"command not found|: not found\s*$|No such file or directory|Permission denied|is not set\b"
        r"|Unknown (?:option|argument|command)|unrecognized (?:option|arguments?)|invalid (?:option|configuration)"
        r"|flag provided but not defined|not recognized as an internal|Could not find file|does not exist"
        r"|no such option|\bNo \w*file found\b|missing required|undefined variable|unbound variable|cannot open"
        r"|Invalid workflow"
        r"|is not a valid|Unsupported|not supported|requires .{0,40} version",
        7,
        S,
        C.CONFIG,
        "build script or configuration problem",
        icase=True,
    ),
    _r(
        "parse-error",
        r"while (?:parsing|scanning) an? \w+|did not find expected|could not find expected"
        r"|mapping values are not allowed|found character that cannot start"
        r"|Unexpected (?:token|end of (?:JSON )?input)|JSON\.parse|invalid YAML",
        8,
        S,
        None,
        "input could not be parsed",
    ),
    # --- exception lines: after the specific kinds, so `ModuleNotFoundError: x` counts as a dependency
    _r("exception-line", r"^\w+(?:\.\w+)*(?:Error|Exception): \S", 8, S, None, "exception raised"),
    # --- generic ---------------------------------------------------------------------------------
    _r("located-message", r"^\S+?\.\w{1,8}:\d+(?::\d+)?:\s*\S", 5, G, None, "diagnostic at a file location"),
    _r(
        "error-prefix",
        r"^\s*(?:\[?(?:ERROR|FATAL|CRITICAL)\]?[:\s]|error:|fatal:|Error:|ERR!|##\[error\])",
        6,
        G,
        None,
        "error reported",
    ),
    _r(
        "error-word",
        r"\b(?:errors?|fail(?:s|ed|ure|ures|ing)?|fatal|exception|panic(?:ked)?|abort(?:ed)?|denied"
        r"|refused|unable|cannot|can't|could not|couldn't|not found|missing|invalid|undefined|unexpected|broken"
        r"|crash(?:ed)?|violation)\b",
        3,
        G,
        None,
        "mentions a failure",
        icase=True,
    ),
    _r("warning", r"\bwarn(?:ing)?s?\b|deprecat", 1, G, None, "warning", icase=True),
)

# Lines that only say *that* something failed. They end a failing step and are kept as evidence of
# last resort, never as the explanation when anything more specific exists.
TRAILERS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"The command \".*\" (?:failed and )?exited with \d+|^\"? ?exited with \d+\.?$|Your build exited with",
        r"Process completed with exit code|exited with code|exit code \d+\.?\s*$|exit status \d+\s*$",
        r"^ERROR: Job failed|script returned exit code|marked build as failure|^Finished: (?:FAILURE|UNSTABLE)",
        r"^make(?:\[\d+\])?: \*\*\*|^npm ERR! (?:code ELIFECYCLE|errno|Failed at|This is probably|A complete log"
        r"|Exit status|\s*$|Tell the author|You can get|Please include|/)|^npm ERR! [\w ]+ is likely",
        r"error Command failed with exit code|BUILD FAILED|BUILD FAILURE|FAILURE: Build failed with an exception",
        r"^\[ERROR\] (?:-> \[Help|To see the full|Re-run Maven|For more information|\s*$|Failed to execute goal)",
        r"InvocationError|ERROR: .* commands failed|returned non-zero exit status|Command exited with non-zero",
        r"Error: Process completed|^##\[error\](?:Bash|PowerShell|Script) exited|^Error: Command failed",
        r"^\s*(?:Tests|Examples?) (?:failed|run)|^\s*\d+ (?:examples?|tests?), \d+ failures?|^rake aborted!",
        r"^FAIL\s*$|^FAIL\t\S+\t|failed \d+ times|failed\. Retrying, \d+ of \d+|Command failed with status",
        r"^(?:ok|FAIL)\s+\S+\s+[\d.]+s$|recipe for target .* failed",
        r"^\s*ERROR: Build failed|^\[Pipeline\] }|See (?:also )?[\"`'].*\.log|for more details|--trace|--stacktrace",
    )
)

# Phrases that mention failure words while saying everything is fine; removed before matching.
_BENIGN = re.compile(
    r"\b(?:0|no) (?:errors?|failures?|failed|problems?|offenses?|warnings?)\b|\b(?:errors?|failures?|failed|skipped)"
    r"[:=]\s*0\b|-W(?:no-)?error\S*|error_reporting|on[-_]error|ignore[-_]errors?|\berror[-_.]\w+\.\w+|"
    r"\w+[-_]error\b|\b(?:errors?|failures?)\.(?:c|h|cc|o|py|rb|js|ts|go|rs|java|ex|exs|md|txt)\b|allow_failures"
    r"|--fail-fast|fail_fast|failfast|set -e|errexit|pipefail|--no-fail|continue-on-error|\bstderr\b",
    re.IGNORECASE,
)
# Lines that report success or are pure runner chatter never explain a failure.
_SUCCESS = re.compile(
    r"^\s*(?:ok\b|PASS(?:ED)?\b|\u2713|\u2714|All tests passed|\d+ passed|passed\b)|\bPASS(?:ED)?\s*$|\.\.\. ok\s*$"
    r"|^\s*--- (?:PASS|SKIP)\b|\bskipped:|\.\.\. skipped|# SKIP\b|^info Visit https?://|\bPASSED\s*\[\s*\d+%\]"
    r"|^\[\+\] |\(PENDING: |# Temporarily skipped|^=== (?:RUN|PAUSE|CONT)\s|^SKIPPED\b|\bSKIPPED\s*(?:\[\s*\d+%\])?$"
    r"|^travis_(?:fold|time)|^\$ |^\++ ?\S|^##\[(?:group|endgroup|section|command)\]|^\[Pipeline\] (?!})|^Running "
    r"|^Downloading |^Collecting |^Requirement already|^Installing |^Fetching |^Using |^Setting up |^Unpacking "
    r"|^Get:\d+ |^Hit:\d+ |^Selecting previously|^Preparing to unpack",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LineScore:
    score: float
    rule: Rule | None
    trailer: bool


_NONE = LineScore(0.0, None, False)
# A warning rarely fails a build; whatever it mentions, it is capped below real errors.
_WARNING_LINE = re.compile(
    r"^(?:\[warn(?:ing)?\]|warn(?:ing)?\b|npm WARN|W: |\S+: warning:|\S+:\d+(?::\d+)?: warning:)", re.IGNORECASE
)
WARNING_CAP = 1.5
# Stack frames and status chatter locate an error but never state it.
_FRAME_OR_STATUS = re.compile(
    r"^\s*(?:at [\w$.<>]+ ?\(|at \S+:\d+:\d+|File \".*\", line \d+|from \S+:\d+:in |\S+:\d+:in [`']|-- |#\d+ +0x)"
)
FRAME_CAP = 1.0
_LEVEL_TAG = re.compile(r"^\[(error|info|warn|warning|debug|success)\]\s?", re.IGNORECASE)


def is_chatter(text: str) -> bool:
    """Runner output that reports progress or success (never the explanation of a failure)."""
    return bool(_SUCCESS.search(text.strip()))


def is_trailer(text: str) -> bool:
    return any(p.search(text) for p in TRAILERS)


def score_line(text: str) -> LineScore:
    """Score one cleaned line: the weight of its most specific matching rule."""
    stripped = text.strip()
    if not stripped or len(stripped) < 3:
        return _NONE
    if _SUCCESS.search(stripped):
        return _NONE
    # sbt/Gradle-style level tags say nothing about the cause; match what follows them.
    level = _LEVEL_TAG.match(stripped)
    if level:
        rest = stripped[level.end() :].strip()
        if not rest:
            return _NONE
        if level.group(1).lower().startswith("warn"):
            inner = score_line(rest)
            return LineScore(min(inner.score, WARNING_CAP), inner.rule, inner.trailer)
        stripped = rest
    probe = _BENIGN.sub(" ", stripped) if _BENIGN.search(stripped) else stripped
    for rule in RULES:  # ordered most specific first
        if rule.pattern.search(probe):
            # Trailers are only checked for lines that matched: most lines match nothing.
            if is_trailer(stripped):
                return LineScore(min(rule.weight, 2.0), rule, True)
            if _WARNING_LINE.search(stripped) and rule.category is not Category.LINT:
                return LineScore(min(rule.weight, WARNING_CAP), rule, False)
            if _FRAME_OR_STATUS.search(stripped):
                return LineScore(min(rule.weight, FRAME_CAP), rule, False)
            return LineScore(rule.weight, rule, False)
    return _NONE
