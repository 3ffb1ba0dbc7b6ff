"""What the classifier sees of an investigation, and how it is turned into one text document.

The deterministic analysis already knows a lot: which rules the evidence lines matched, which
knowledge-base entries fired, what the failing command was, whether JUnit reported failures.
Rather than hand-tune how much each of those is worth, they become *signal tokens* beside the
masked text of the evidence and excerpt, and the linear model learns their weight from labeled
data. The same document is built at training and at prediction time, from ``Signals`` alone.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from cimedic.tools.logs.templates import mask

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_+#.-]*")
# Shell prompts and runner prefixes carry no meaning about the command itself.
_COMMAND_PREFIX = re.compile(r"^(?:\$ |\+ |##\[group\]Run |##\[section\]Starting: |> )")
EXCERPT_LINES = 40


class Signals(BaseModel):
    """Everything the cause classifier may use; built by the investigation, stored with incidents."""

    command: str | None = None
    evidence: list[str] = Field(default_factory=list, description="evidence lines, most telling first")
    evidence_rules: list[str] = Field(default_factory=list, description="line-rule name per evidence line")
    excerpt: list[str] = Field(default_factory=list)
    kb_ids: list[str] = Field(default_factory=list, description="matched knowledge-base entries, best first")
    kb_categories: list[str] = Field(default_factory=list)
    votes: dict[str, float] = Field(default_factory=dict, description="rule and KB category votes")
    failed_tests: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def signal_tokens(s: Signals) -> list[str]:
    """Tokens naming what the rules found; they cannot collide with log words (``zz`` prefix)."""
    out: list[str] = []
    if s.command:
        words = _WORD.findall(_COMMAND_PREFIX.sub("", s.command.strip()))[:4]
        out += [f"zzcmd_{_slug(w)}" for w in words if _slug(w)]
    for rank, rule in enumerate(s.evidence_rules[:3]):
        out.append(f"zzrule_{_slug(rule)}")
        if rank == 0:
            out.append(f"zztoprule_{_slug(rule)}")
    for rank, (kb_id, cat) in enumerate(zip(s.kb_ids[:3], s.kb_categories[:3], strict=False)):
        out += [f"zzkb_{_slug(kb_id)}", f"zzkbcat_{cat}"]
        if rank == 0:
            out.append(f"zzkbtop_{cat}")
    if s.votes:
        total = sum(s.votes.values()) or 1.0
        ranked = sorted(s.votes.items(), key=lambda kv: -kv[1])
        top, weight = ranked[0]
        out.append(f"zzvote_{top}")
        # Repeat by strength so a clear vote weighs more than a marginal one (tf is sublinear).
        out += [f"zzvotestrong_{top}"] * (2 if weight / total > 0.7 else 0)
    if s.failed_tests:
        out.append("zztests_failed")
    if not s.evidence:
        out.append("zzno_evidence")
    return out


def document(s: Signals) -> str:
    """The classifier's input: signal tokens, then masked evidence (twice: it matters most), then excerpt."""
    evidence = [mask(line)[:300] for line in s.evidence[:4]]
    excerpt = [mask(line)[:300] for line in s.excerpt[-EXCERPT_LINES:]]
    return "\n".join([" ".join(signal_tokens(s)), *evidence, *evidence[:1], *excerpt])
