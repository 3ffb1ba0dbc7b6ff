"""A transparent category heuristic: evidence votes, plus what the failing command was.

Each evidence line votes for the category of the rule that matched it (the first line counts
most); the failing step's command adds a prior (``rubocop`` → lint, ``npm install`` → dependency);
failed JUnit tests add to ``test``. ``cimedic.tools.cause.decide`` combines this with the trained
classifier and similar past incidents.
"""

from __future__ import annotations

import re

from cimedic.models import Category

_COMMAND_PRIORS: tuple[tuple[re.Pattern[str], Category, float], ...] = (
    (
        re.compile(
            r"\b(?:rubocop|eslint|tslint|stylelint|flake8|pylint|pycodestyle|ruff|black|isort|mypy|gofmt"
            r"|golint|go vet|staticcheck|golangci|clippy|rustfmt|cargo fmt|clang-format|cpplint|checkstyle"
            r"|scalastyle|scalafmt|hlint|perlcritic|shellcheck|markdownlint|awesome_bot|prettier|lint"
            r"|credo|jshint|jscs|coffeelint|standard|spotless|ktlint|swiftlint|phpcs|php-cs-fixer|codespell"
            r"|vint|luacheck|lintr|format)\b|lint[_-]|check[_-]?(?:integrity|format|style|links?)",
            re.I,
        ),
        Category.LINT,
        12.0,
    ),
    (
        re.compile(
            r"\b(?:npm (?:install|ci)|yarn(?: install)?\s*$|pnpm install|pip install|poetry install|uv sync"
            r"|bundle(?: install)?\s*$|bundle install|composer (?:install|update)|go (?:get|mod download)"
            r"|cargo fetch|mvn dependency|conda (?:install|create|env)|apt-get install|brew install"
            r"|gem install|cpanm|mix deps\.get|rebar3? get-deps|lein deps|cabal install|stack setup"
            r"|pod install|nuget restore|dotnet restore|install_deps|luarocks)\b",
            re.I,
        ),
        Category.DEPENDENCY,
        3.0,
    ),
    (
        re.compile(
            r"\b(?:test|tests|pytest|nosetests|tox|rspec|jest|mocha|karma|ava|tap|prove|phpunit|go test"
            r"|cargo test|mix test|ctest|make check|busted|spec|cucumber|minitest|testthat|check)\b",
            re.I,
        ),
        Category.TEST,
        2.0,
    ),
    (
        re.compile(
            r"\b(?:make|cmake|gcc|g\+\+|clang|javac|tsc|webpack|cargo build|go build|mvn (?:compile|package)"
            r"|gradle(?:w)? (?:build|assemble|compile)|msbuild|dotnet build|xcodebuild|swift build|sbt compile"
            r"|jekyll build|latexmk|pdflatex|xelatex|hugo|mkdocs)\b",
            re.I,
        ),
        Category.COMPILE,
        1.5,
    ),
)


# A named, curated cause outweighs line-shape votes; the first match (earliest line) most.
KB_TOP_VOTE = 20.0
KB_VOTE = 6.0


def evidence_votes(ranked: list[tuple[Category | None, float]]) -> dict[Category, float]:
    """Votes of evidence lines (rule category, score), most telling first: the first line explains
    the failure and counts double, later ones only support it."""
    votes: dict[Category, float] = {}
    for rank, (category, score) in enumerate(ranked):
        if category is not None:
            votes[category] = votes.get(category, 0.0) + score * (2.0 if rank == 0 else 1.0 / (1 + rank))
    return votes


def add_knowledge_votes(votes: dict[Category, float], categories: list[Category]) -> None:
    """Knowledge-base matches (best first) vote on top of the evidence."""
    for rank, category in enumerate(categories):
        votes[category] = votes.get(category, 0.0) + (KB_TOP_VOTE if rank == 0 else KB_VOTE)


def tally(votes: dict[Category, float], command: str | None, failed_tests: int) -> dict[Category, float]:
    """Evidence votes plus the failing command's prior and the JUnit failures."""
    out = dict(votes)
    if command:
        for pattern, category, weight in _COMMAND_PRIORS:
            if pattern.search(command):
                out[category] = out.get(category, 0.0) + weight
                break
    if failed_tests:
        out[Category.TEST] = out.get(Category.TEST, 0.0) + 8.0
    return out


def distribution(counts: dict[Category, float]) -> dict[Category, float]:
    """Vote shares, damped when the evidence is thin (few, weak lines): they sum to at most 1."""
    positive = {k: v for k, v in counts.items() if v > 0}
    if not positive:
        return {}
    total = sum(positive.values())
    damping = min(1.0, max(positive.values()) / 20.0)
    return {k: v / total * damping for k, v in positive.items()}


def classify(
    votes: dict[Category, float],
    command: str | None,
    failed_tests: int,
) -> tuple[Category, float]:
    """Category and a confidence in [0, 1] from the rules alone."""
    shares = distribution(tally(votes, command, failed_tests))
    if not shares:
        return Category.OTHER, 0.2
    category, confidence = max(shares.items(), key=lambda kv: kv[1])
    return category, round(max(0.05, min(0.95, confidence)), 2)
