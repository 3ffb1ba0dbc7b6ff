"""What cimedic remembers when it investigates: the trained cause model, similar past incidents,
and how often this failure's fingerprint was seen before.

Each part is optional and fails soft: a broken model file or store becomes a warning in the
diagnosis (naming the file and the repair command), never a lost investigation.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from cimedic.errors import CimedicError, one_line
from cimedic.models import Diagnosis, Fingerprint, SimilarIncident
from cimedic.redact import redact
from cimedic.settings import Settings
from cimedic.tools.cause.features import Signals
from cimedic.tools.cause.model import CauseModel

# Evidence lines put ahead of the excerpt when a failure is stored or looked up.
EVIDENCE_LINES = 5


def shipped_model_path() -> Path:
    return Path(str(resources.files("cimedic.knowledge") / "model" / "classifier.json"))


def model_choice(settings: Settings) -> tuple[Path | None, str | None]:
    """The classifier artifact and the version label an investigation records for it: the explicit
    setting, else the promoted champion, else a model file from before the registry, else the shipped one."""
    if settings.classifier_model is not None:
        return settings.classifier_model, f"file:{settings.classifier_model.name}"
    from cimedic.registry import ModelRegistry

    champion = ModelRegistry(settings.models_dir).champion("classifier")
    if champion is not None:
        return settings.models_dir / "classifier" / champion.version / champion.file, champion.version
    legacy = settings.models_dir / "classifier.json"
    if legacy.is_file():
        return legacy, "file:classifier.json"
    shipped = shipped_model_path()
    return (shipped, "shipped") if shipped.is_file() else (None, None)


@lru_cache(maxsize=2)
def _load_model(path: Path, mtime_ns: int) -> CauseModel:
    return CauseModel.load(path)


def cause_probabilities(
    settings: Settings, signals: Signals, warnings: list[str]
) -> tuple[dict[str, float], str] | None:
    """The classifier's category probabilities and the version label of the model that gave them."""
    path, version = model_choice(settings)
    if path is None:
        return None
    try:
        model = _load_model(path, path.stat().st_mtime_ns)
    except (CimedicError, OSError) as exc:
        warnings.append(f"cause classifier not used: {one_line(exc)}")
        return None
    return model.predict_proba([signals])[0], version or "none"


def failure_text(diag: Diagnosis) -> str:
    """What a failure is stored and looked up by: top evidence lines, then the excerpt, redacted."""
    lines = [e.text for e in diag.evidence[:EVIDENCE_LINES]]
    if diag.excerpt is not None:
        lines.append(diag.excerpt.text)
    return redact("\n".join(lines))


def similar_incidents(settings: Settings, diag: Diagnosis, warnings: list[str]) -> list[SimilarIncident]:
    if settings.similar_incidents == 0 or (diag.excerpt is None and not diag.evidence):
        return []
    from cimedic.memory.store import IncidentStore  # chromadb and the embedder load only when incidents exist

    try:
        return IncidentStore(settings).search(failure_text(diag), settings.similar_incidents)
    except CimedicError as exc:
        warnings.append(f"incident memory not used: {one_line(exc)}")
        return []


def run_key(path: Path) -> str:
    """Identity of one investigated run, so investigating it again does not count it twice."""
    resolved = path.resolve()
    stat = resolved.stat()
    return f"file:{resolved}:{stat.st_size}:{stat.st_mtime_ns}"[:400]


def fingerprint_history(settings: Settings, diag: Diagnosis, key: str, warnings: list[str]) -> Fingerprint | None:
    if diag.fingerprint is None:
        return None
    from cimedic.store.fingerprints import FingerprintStore, describe

    try:
        store = FingerprintStore.open(settings.effective_database_url)
        stats = store.record(diag.fingerprint.id, run_key=key, category=str(diag.category), title=diag.summary)
    except CimedicError as exc:
        warnings.append(f"fingerprint history not recorded: {one_line(exc)}")
        return diag.fingerprint
    return Fingerprint(
        id=stats.id,
        first_seen=stats.first_seen,
        last_seen=stats.last_seen,
        count=stats.count,
        count_30d=stats.count_30d,
        seen=describe(stats, stats.last_seen),
    )
