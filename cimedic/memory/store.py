"""The incident memory: an append-only JSONL journal (the truth) and a Chroma index built from it.

The journal is plain text a person can read, back up and repair; Chroma only makes it searchable and
can always be rebuilt from it (``cimedic incidents reindex``). So a missing or damaged index is an
error that says so, never an empty index quietly created over incidents that exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cimedic.errors import CimedicError, one_line
from cimedic.memory.embed import Embedder, FastPathEmbedder, default_embedder
from cimedic.memory.journal import Incident, Journal, StoreError, new_incident_id
from cimedic.models import SimilarIncident
from cimedic.settings import Settings, get_settings

__all__ = ["Incident", "IncidentStore", "SimilarIncident", "StoreError", "new_incident_id"]

COLLECTION = "incidents"
CHUNK_SIZE = 800
CHUNK_OVERLAP = 100
# Search asks for this many chunks per wanted incident: several chunks of one incident can crowd the top.
CHUNKS_PER_RESULT = 4
LOCK_TIMEOUT_S = 300.0
BATCH = 256
REINDEX_HINT = "run `cimedic incidents reindex` to rebuild it from the journal"

EmbedderFactory = Callable[[Settings], Embedder]


@lru_cache(maxsize=1)
def _splitter() -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)


def _records(incidents: Sequence[Incident]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Chroma ids, documents and metadata: one per excerpt chunk, each led by the title it belongs to."""
    ids: list[str] = []
    docs: list[str] = []
    metas: list[dict[str, Any]] = []
    for inc in incidents:
        for n, chunk in enumerate(_splitter().split_text(inc.excerpt) or [""]):
            ids.append(f"{inc.id}#{n}")
            docs.append(f"{inc.title}\n{chunk}")
            # title/cause/fix ride along so a shared server can answer for incidents another journal holds.
            meta = {"incident_id": inc.id, "category": inc.category.value, "chunk": n}
            metas.append(meta | {"title": inc.title, "cause": inc.cause, "fix": inc.fix})
    return ids, docs, metas


def _server_address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"chroma_url {url!r}: expected http(s)://host[:port]")
    ssl = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if ssl else 8000), ssl


class IncidentStore:
    def __init__(self, settings: Settings | None = None, embedder_factory: EmbedderFactory = default_embedder) -> None:
        self.settings = settings or get_settings()
        self.dir = self.settings.incidents_dir
        self.journal = Journal(self.dir / "journal.jsonl")
        self.index_path = self.dir / "chroma"
        self._factory = embedder_factory
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        # Built on first use: a search of an empty memory never loads a model.
        if self._embedder is None:
            self._embedder = self._factory(self.settings)
        return self._embedder

    @property
    def journal_path(self) -> Path:
        return self.journal.path

    @property
    def index_location(self) -> str:
        return self.settings.chroma_url or str(self.index_path)

    def ensure_fast_path(self) -> str | None:
        """Writers call this so readers find the fast embedding path ready; returns a warning or None."""
        embedder = self.embedder
        return embedder.ensure_fast_path() if isinstance(embedder, FastPathEmbedder) else None

    def add(self, incident: Incident) -> Incident:
        """Journal the incident (durably) and index it; returns what was stored, secrets redacted."""
        incident = incident.redacted()
        ids, docs, metas = _records([incident])
        vectors = self.embedder.embed(docs)  # the slow part, outside the lock
        with self._lock():
            journal = self.journal.read()
            # The index is checked before the journal grows: a broken one must be rebuilt, not added to.
            with self._collection(journal) as col:
                self.journal.append(incident)
                if incident.id in journal:
                    col.delete(where={"incident_id": incident.id})
                col.upsert(ids=ids, embeddings=vectors, documents=docs, metadatas=metas)
        return incident

    def search(self, text: str, k: int = 5) -> list[SimilarIncident]:
        """The ``k`` incidents whose best chunk is nearest ``text``, best first."""
        journal = self.journal.read()
        if not journal or k <= 0:
            return []
        vector = self.embedder.embed([text])[0]
        with self._collection(journal) as col:
            found = col.query(
                query_embeddings=[vector],
                n_results=max(1, min(k * CHUNKS_PER_RESULT, col.count())),
                include=["metadatas", "distances"],
            )
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        shared = bool(self.settings.chroma_url)
        for meta, distance in zip(found["metadatas"][0], found["distances"][0], strict=True):
            score = min(1.0, max(0.0, 1.0 - float(distance)))
            key = str(meta["incident_id"])
            if key not in journal and not shared:
                continue  # removed from the journal, the truth, since the index was built
            if key not in best or score > best[key][0]:
                best[key] = (score, meta)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
        return [self._similar(key, score, meta, journal) for key, (score, meta) in ranked]

    @staticmethod
    def _similar(key: str, score: float, meta: dict[str, Any], journal: dict[str, Incident]) -> SimilarIncident:
        inc = journal.get(key)
        # The journal's data, else (an incident another machine taught a shared server) the index's copy.
        source: dict[str, Any] = inc.model_dump() if inc is not None else meta
        fields = {name: source.get(name, "") for name in ("category", "cause", "fix", "title")}
        return SimilarIncident.model_validate(fields | {"id": key, "score": round(score, 3)})

    def get(self, incident_id: str) -> Incident | None:
        return self.journal.read().get(incident_id)

    def count(self) -> int:
        return len(self.journal.read())

    def reindex(self) -> int:
        """Drop the index and rebuild it from the journal; a corrupt local index is moved aside, not deleted."""
        with self._lock():
            incidents = list(self.journal.read().values())
            ids, docs, metas = _records(incidents)
            vectors = self.embedder.embed(docs)
            client = self._fresh_client()
            try:
                col = client.create_collection(COLLECTION, metadata=self._metadata(), embedding_function=None)
                for start in range(0, len(ids), BATCH):
                    end = start + BATCH
                    col.upsert(
                        ids=ids[start:end],
                        embeddings=vectors[start:end],
                        documents=docs[start:end],
                        metadatas=metas[start:end],
                    )
            finally:
                client.close()
        return len(incidents)

    def list(self, limit: int = 20) -> list[Incident]:
        """The newest ``limit`` incidents, newest first."""
        incidents = sorted(self.journal.read().values(), key=lambda inc: inc.created_at, reverse=True)
        return incidents[: max(0, limit)]

    @contextmanager
    def _lock(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.dir / ".lock"), timeout=LOCK_TIMEOUT_S):
                yield
        except Timeout as exc:
            raise StoreError(f"{self.dir}: another cimedic process held the lock for {LOCK_TIMEOUT_S:.0f} s") from exc

    # -- index -----------------------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        return {"hnsw:space": "cosine", "embedder": self.embedder.name}

    def _broken(self, reason: str) -> StoreError:
        return StoreError(f"incident index at {self.index_location} is missing/unreadable ({reason}); {REINDEX_HINT}")

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        url = self.settings.chroma_url
        if not url:
            return chromadb.PersistentClient(path=str(self.index_path), settings=chroma_settings)
        host, port, ssl = _server_address(url)
        try:
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
        except Exception as exc:
            raise StoreError(f"cannot reach the Chroma server at {url} ({one_line(exc)})") from exc

    @contextmanager
    def _collection(self, journal: dict[str, Incident]) -> Iterator[Any]:
        """The healthy collection; created only while the journal is empty (else it must be rebuilt)."""
        if journal and not self.settings.chroma_url and not self.index_path.is_dir():
            raise self._broken("no index folder")
        client = None
        try:
            # A client per operation, closed after: another process may have written since, and a
            # long-lived local client would keep serving its stale view of the files.
            client = self._client()
            col = self._open(client, journal)
            yield col
        except CimedicError:
            raise
        except Exception as exc:
            raise self._broken(one_line(exc)) from exc
        finally:
            if client is not None:
                client.close()

    def _open(self, client: Any, journal: dict[str, Incident]) -> Any:
        from chromadb.errors import NotFoundError

        try:
            col = client.get_collection(COLLECTION, embedding_function=None)
        except NotFoundError:
            if journal:
                raise self._broken(f"no {COLLECTION!r} collection") from None
            # embedding_function=None: we pass vectors ourselves; Chroma's default one downloads a model.
            return client.create_collection(COLLECTION, metadata=self._metadata(), embedding_function=None)
        built_with = (col.metadata or {}).get("embedder")
        if built_with != self.embedder.name:
            raise StoreError(
                f"incident index at {self.index_location} was built with embedder {built_with!r}, "
                f"not {self.embedder.name!r}; {REINDEX_HINT}"
            )
        wanted = [f"{key}#0" for key in journal]
        present = sum(
            len(col.get(ids=wanted[i : i + BATCH * 4], include=[])["ids"]) for i in range(0, len(wanted), BATCH * 4)
        )
        if present < len(wanted):
            raise self._broken(f"it holds {present} of the journal's {len(wanted)} incidents")
        return col

    def _fresh_client(self) -> Any:
        """A client whose ``incidents`` collection is gone; a local index that cannot be opened is moved aside."""
        from chromadb.errors import NotFoundError

        try:
            client = self._client()
        except CimedicError:
            raise
        except Exception as exc:
            client = self._reopen_aside(exc)
        try:
            client.delete_collection(COLLECTION)
        except NotFoundError:
            pass
        except Exception as exc:
            client.close()
            client = self._reopen_aside(exc)
        return client

    def _reopen_aside(self, exc: Exception) -> Any:
        if self.settings.chroma_url:
            raise self._broken(one_line(exc)) from exc
        if not self.index_path.exists():
            raise self._broken(one_line(exc)) from exc
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        os.replace(self.index_path, self.index_path.with_name(f"chroma.broken-{stamp}"))
        return self._client()
