"""The incident store: journal as truth, Chroma as a rebuildable index, on disk or on a real server."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cimedic.errors import CimedicError
from cimedic.investigate import investigate_path
from cimedic.memory.embed import HashingEmbedder, MiniLMEmbedder
from cimedic.memory.store import Incident, IncidentStore, StoreError
from cimedic.models import Category
from cimedic.recall import failure_text
from cimedic.settings import get_settings

pytest_plugins = ["memory_fixtures"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NPM_QUERY = "npm ERR! 404 Not Found - GET https://registry.npmjs.org/@myorg%2fui-kit - package is not in this registry"


def hashing_store() -> IncidentStore:
    return IncidentStore(get_settings(), lambda _settings: HashingEmbedder())


def learned(path: Path, category: Category, cause: str, fix: str) -> Incident:
    diag = investigate_path(path)
    return Incident(
        category=category,
        cause=cause,
        fix=fix,
        title=diag.summary,
        excerpt=failure_text(diag),
        fingerprint=diag.fingerprint.id if diag.fingerprint else None,
        source=str(path),
    )


def incident(n: int, **extra: str) -> Incident:
    fields = {"cause": f"cause {n}", "fix": f"fix {n}", "title": f"incident {n}", "excerpt": f"failure {n} " * 20}
    return Incident(category=Category.INFRA, source="test", **(fields | extra))


def test_semantic_search_ranks_the_npm_404_incident_first(minilm: MiniLMEmbedder) -> None:
    store = IncidentStore(get_settings(), lambda _settings: minilm)
    npm = store.add(
        learned(EXAMPLES / "azure-npm-e404.log", Category.DEPENDENCY, "scoped package unpublished", "pin 2.0.3")
    )
    tests = store.add(
        learned(EXAMPLES / "gha-pytest-failure.zip", Category.TEST, "discount threshold off by one", "use >=")
    )
    store.add(learned(EXAMPLES / "oom-killed.log", Category.RESOURCE, "heap too small", "raise the limit"))

    hits = store.search(NPM_QUERY, k=3)
    assert hits[0].id == npm.id
    scores = {h.id: h.score for h in hits}
    assert scores[npm.id] > scores[tests.id] + 0.1
    assert all(0.0 <= h.score <= 1.0 and h.score == round(h.score, 3) for h in hits)
    assert hits[0].cause == "scoped package unpublished"
    assert hits[0].category == Category.DEPENDENCY

    assertion = "AssertionError: assert Decimal('5.00') == Decimal('7.50') in test_totals"
    assert store.search(assertion, k=1)[0].id == tests.id


def test_search_returns_each_incident_once_with_its_best_chunk() -> None:
    store = hashing_store()
    long_one = store.add(incident(1, excerpt="\n".join(f"kafka broker {i} unreachable" for i in range(200))))
    store.add(incident(2))
    hits = store.search("kafka broker unreachable", k=5)
    assert [h.id for h in hits].count(long_one.id) == 1
    assert len(hits) == 2


def test_search_of_an_empty_memory_imports_neither_chromadb_nor_a_model(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        from cimedic.memory.store import IncidentStore
        hits = IncidentStore().search("npm ERR! 404 Not Found", 5)
        heavy = ("chromadb", "torch", "sentence_transformers", "onnxruntime", "langchain_text_splitters")
        print(json.dumps({"hits": len(hits), "heavy": [m for m in heavy if m in sys.modules]}))
        """
    )
    journal = get_settings().incidents_dir / "journal.jsonl"
    for journal_exists in (False, True):
        if journal_exists:
            journal.parent.mkdir(parents=True)
            journal.touch()
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
        assert json.loads(out.stdout) == {"hits": 0, "heavy": []}
    assert not (journal.parent / "chroma").exists()


def test_importing_the_store_is_cheap() -> None:
    heavy = {"chromadb", "torch", "sentence_transformers", "onnxruntime", "langchain_text_splitters", "filelock"}
    script = f"import sys, cimedic.memory.store, cimedic.memory.cli; print(sorted(set(sys.modules) & {heavy!r}))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_two_processes_adding_at_once_lose_nothing(tmp_path: Path) -> None:
    go = tmp_path / "go"
    writer = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from cimedic.memory.embed import HashingEmbedder
        from cimedic.memory.store import Incident, IncidentStore
        import chromadb  # imported before the start line so both writers really overlap
        store = IncidentStore(embedder_factory=lambda s: HashingEmbedder())
        tag = sys.argv[1]
        Path({str(tmp_path)!r}, "ready-" + tag).touch()
        while not Path({str(go)!r}).exists():
            time.sleep(0.01)
        for i in range(20):
            excerpt = f"runner {{tag}}-{{i}} lost its connection {{i * 7919}}"
            store.add(Incident(category="infra", cause=f"{{tag}} cause {{i}}", fix="retry", source="writer",
                               title=f"{{tag}} incident {{i}}", excerpt=excerpt))
            time.sleep(0.05)  # like separate `learn` runs: the other writer gets the lock in between
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", writer, tag]) for tag in ("alpha", "beta")]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]

    store = hashing_store()
    lines = store.journal_path.read_text().splitlines()
    assert len(lines) == 40
    writers_in_order = [json.loads(line)["title"].split()[0] for line in lines]
    switches = sum(a != b for a, b in itertools.pairwise(writers_in_order))
    assert switches >= 3, f"the writers did not interleave: {writers_in_order}"
    assert store.count() == 40
    for inc in store.list(limit=100):
        assert store.search(f"{inc.title}\n{inc.excerpt}", k=1)[0].id == inc.id


def test_a_deleted_index_is_an_error_until_reindex_rebuilds_it() -> None:
    store = hashing_store()
    added = [store.add(incident(n)) for n in range(3)]
    shutil.rmtree(store.index_path)
    for attempt in (lambda: store.search("failure 1"), lambda: store.add(incident(9))):
        with pytest.raises(StoreError) as err:
            attempt()
        message = str(err.value)
        assert str(store.index_path) in message
        assert "cimedic incidents reindex" in message
        assert "\n" not in message
    assert store.count() == 3, "a refused add must not grow the journal"
    assert not store.index_path.exists(), "no empty index may be created over existing incidents"

    assert store.reindex() == 3
    assert {store.search(f"{a.title}\n{a.excerpt}", k=1)[0].id for a in added} == {a.id for a in added}


def test_a_corrupt_index_is_moved_aside_and_rebuilt() -> None:
    store = hashing_store()
    first = store.add(incident(1))
    store.add(incident(2))
    with (store.index_path / "chroma.sqlite3").open("r+b") as fh:
        fh.write(b"this is not a sqlite database" * 200)
    with pytest.raises(StoreError, match=r"missing/unreadable .*cimedic incidents reindex"):
        store.search("failure 1")
    assert isinstance(StoreError("x"), CimedicError)

    assert store.reindex() == 2
    assert len(list(store.dir.glob("chroma.broken-*"))) == 1
    assert store.search(f"{first.title}\n{first.excerpt}", k=1)[0].id == first.id


def test_an_index_behind_the_journal_is_an_error() -> None:
    store = hashing_store()
    store.add(incident(1))
    store.add(incident(2))
    # What a crash between the journal append and the index write leaves behind.
    with store.journal_path.open("a") as fh:
        fh.write(incident(3).model_dump_json() + "\n")
    with pytest.raises(StoreError, match="holds 2 of the journal's 3 incidents"):
        store.search("failure")
    assert store.reindex() == 3
    assert len(store.search("failure", k=5)) == 3


def test_a_malformed_journal_line_is_named() -> None:
    store = hashing_store()
    store.add(incident(1))
    with store.journal_path.open("a") as fh:
        fh.write('{"id": "inc-broken", "category": "infra"\n')
    for attempt in (store.count, lambda: store.search("x"), lambda: store.add(incident(2)), store.reindex):
        with pytest.raises(StoreError) as err:
            attempt()
        assert f"{store.journal_path}:2: malformed incident record" in str(err.value)
        assert "\n" not in str(err.value)


def test_a_torn_last_line_is_ignored_and_cut_by_the_next_add() -> None:
    store = hashing_store()
    store.add(incident(1))
    with store.journal_path.open("a") as fh:
        fh.write('{"id": "inc-half", "categ')  # a write interrupted by a crash
    assert store.count() == 1
    store.add(incident(2))
    assert store.count() == 2
    assert "inc-half" not in store.journal_path.read_text()


def test_secrets_are_redacted_before_storage() -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    store = hashing_store()
    stored = store.add(
        incident(
            1,
            cause="deploy used password=hunter2secret from the runner env",
            fix=f"rotated {token} and moved it to secrets",
            excerpt=f"curl -H 'Authorization: token {token}' https://api.github.com\nfatal: password=hunter2secret",
        )
    )
    assert "hunter2secret" not in stored.cause
    on_disk = store.journal_path.read_text()
    assert "[REDACTED:" in on_disk
    index_bytes = (store.index_path / "chroma.sqlite3").read_bytes()
    for secret in ("hunter2secret", token):
        assert secret not in on_disk
        assert secret.encode() not in index_bytes


def test_a_different_embedder_needs_a_reindex() -> None:
    store = hashing_store()
    store.add(incident(1))
    other = IncidentStore(get_settings(), lambda _settings: HashingEmbedder(dim=32))
    with pytest.raises(StoreError, match="built with embedder 'hashing-64', not 'hashing-32'"):
        other.search("failure 1")
    assert other.reindex() == 1
    assert other.search("failure 1", k=1)[0].title == "incident 1"


def test_list_get_and_count_read_the_journal() -> None:
    store = hashing_store()
    assert (store.count(), store.list(), store.get("inc-00000000")) == (0, [], None)
    added = [store.add(incident(n)) for n in range(3)]
    assert [i.id for i in store.list()] == [a.id for a in reversed(added)]
    assert [i.id for i in store.list(limit=1)] == [added[-1].id]
    assert store.get(added[1].id) == added[1]
    assert store.count() == 3
    assert added[0].id.startswith("inc-") and len(added[0].id) == 12


def test_a_chroma_server_backs_the_same_store(
    chroma_server: str, minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIMEDIC_CHROMA_URL", chroma_server)
    get_settings.cache_clear()
    store = IncidentStore(get_settings(), lambda _settings: minilm)
    npm = store.add(learned(EXAMPLES / "azure-npm-e404.log", Category.DEPENDENCY, "unpublished", "pin it"))
    store.add(learned(EXAMPLES / "gha-pytest-failure.zip", Category.TEST, "off by one", "use >="))

    assert store.search(NPM_QUERY, k=2)[0].id == npm.id
    assert not store.index_path.exists(), "with a server, nothing is indexed on local disk"

    import chromadb

    host, port = chroma_server.removeprefix("http://").split(":")
    remote = chromadb.HttpClient(host=host, port=int(port)).get_collection("incidents", embedding_function=None)
    assert remote.metadata["embedder"] == "all-MiniLM-L6-v2"
    assert {m["incident_id"] for m in remote.get(include=["metadatas"])["metadatas"] or []} >= {npm.id}
    assert store.reindex() == 2
    assert store.search(NPM_QUERY, k=1)[0].id == npm.id


def test_an_unreachable_server_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    store = hashing_store()
    store.add(incident(1))
    monkeypatch.setenv("CIMEDIC_CHROMA_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    with pytest.raises(StoreError, match=r"cannot reach the Chroma server at http://127\.0\.0\.1:9"):
        hashing_store().search("failure 1")
