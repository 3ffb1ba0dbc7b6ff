"""Drain3 template mining of log lines, with masking of the parts that vary between runs.

Templates let cimedic treat "the same line with other numbers" as one thing: repeated noise is
down-weighted, a passing run's lines can be recognised in a failing one, and a failure gets a
fingerprint that is stable across re-runs (paths, hashes, durations and ids are masked).
"""

from __future__ import annotations

import hashlib
import re

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

# Order matters: URLs and paths contain numbers and hex, so they are masked before them.
MASKS: tuple[tuple[str, str], ...] = (
    (r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", "URL"),
    (r"(?:[A-Za-z]:)?(?:[\w.@~-]*/)+[\w.@~-]+", "PATH"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\b(?:0x)?[0-9a-fA-F]{7,}\b", "HEX"),
    (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?Z?", "TIME"),
    (r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)*(?:ms|s|m|h|kb|mb|gb|%)?(?![A-Za-z])", "NUM"),
)
_MASK_RES = tuple((re.compile(p), f"<{n}>") for p, n in MASKS)


def mask(text: str) -> str:
    """The masked form Drain3 sees; also usable alone for fingerprints."""
    for pattern, repl in _MASK_RES:
        text = pattern.sub(repl, text)
    return text


def _config(sim_th: float) -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, n) for p, n in MASKS]
    config.drain_sim_th = sim_th
    config.drain_depth = 4
    config.drain_max_clusters = 20000  # bounded memory on hostile input
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    return config


class TemplateIndex:
    """An in-memory Drain3 miner counting how often each template occurs."""

    def __init__(self, sim_th: float = 0.5) -> None:
        self._miner = TemplateMiner(persistence_handler=None, config=_config(sim_th))
        self.counts: dict[int, int] = {}

    def add(self, text: str) -> int:
        result = self._miner.add_log_message(text[:1000])
        cluster_id = int(result["cluster_id"])
        self.counts[cluster_id] = self.counts.get(cluster_id, 0) + 1
        return cluster_id

    def knows(self, text: str) -> bool:
        """True when ``text`` fits a template already mined (no new cluster is created)."""
        return self._miner.match(text[:1000], full_search_strategy="fallback") is not None

    def template(self, cluster_id: int) -> str:
        for cluster in self._miner.drain.clusters:
            if cluster.cluster_id == cluster_id:
                return str(cluster.get_template())
        return ""


def fingerprint(lines: list[str]) -> str:
    """A short stable id for a failure: the masked text of its most explanatory lines."""
    digest = hashlib.sha256("\n".join(mask(x.strip()) for x in lines).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]
