"""Logs kept on local disk: ``<root>/<platform>/<project>/<run>/<attempt>/<job>/<name>.log.gz``.

Each log sits beside a small ``<name>.log.json`` holding its key, the SHA-256 and size of the
original bytes, and the gzip CRC. Writes go to a temporary file in the same folder and are renamed
into place, so a reader (or a crash) never sees half a log: a failed write leaves whatever was
there before. Path segments are percent-encoded key fields; a field too long for a file name is
cut and suffixed with a hash, its full text kept in the ``.json``.
"""

from __future__ import annotations

import builtins
import contextlib
import gzip
import hashlib
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from cimedic.archive.base import (
    COMPRESS_LEVEL,
    FIELDS,
    ArchivedLog,
    ArchiveError,
    ArchiveKey,
    LogInput,
    Prefix,
    check_prefix,
    encode_part,
    key_from_parts,
    open_input,
    read_chunks,
)

DATA = ".log.gz"
META = ".log.json"
# File names are at most 255 bytes; leave room for the temporary-file prefix and suffixes.
SEGMENT_MAX = 200
_CUT = 160


def segment(value: str | int) -> str:
    """The path segment of one key field (encoded; cut with a hash suffix when too long)."""
    enc = encode_part(value)
    if len(enc) <= SEGMENT_MAX:
        return enc
    cut = enc[:_CUT]
    escape = cut.rfind("%", _CUT - 2)
    if escape != -1:  # never split a %XX escape
        cut = cut[:escape]
    # "~" is never produced by encode_part, so a cut segment cannot collide with a whole one.
    return cut + "~" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:16]


class LocalArchive:
    """gzip-compressed logs under ``root`` (``$CIMEDIC_HOME/archive`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: ArchiveKey) -> Path:
        *dirs, name = (segment(p) for p in key.parts())
        return self.root.joinpath(*dirs, name + DATA)

    def put(self, key: ArchiveKey, source: LogInput) -> ArchivedLog:
        dest = self.path(key)
        subject = str(dest)
        meta_dest = _meta_path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(subject, f"cannot create the folder ({exc.strerror or exc})") from exc
        temps: list[Path] = []
        try:
            with open_input(source, subject) as src, _temp(dest, temps) as out:
                sha, crc, size = hashlib.sha256(), 0, 0
                # mtime=0 and no file name: the same log always compresses to the same bytes.
                with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=COMPRESS_LEVEL, mtime=0) as gz:
                    for chunk in read_chunks(src, subject):
                        sha.update(chunk)
                        crc = zlib.crc32(chunk, crc)
                        size += len(chunk)
                        gz.write(chunk)
                out.flush()
                os.fsync(out.fileno())
                compressed = out.tell()
            stored = ArchivedLog(key, dest.as_uri(), size, compressed, sha.hexdigest())
            meta = {"key": list(key.parts()), "size": size, "compressed_size": compressed, "sha256": stored.sha256}
            with _temp(meta_dest, temps) as fh:
                fh.write(json.dumps({**meta, "crc32": crc}).encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            # Metadata first: a crash between the renames leaves old data with new metadata, which
            # ``info`` detects (CRC and size disagree with the gzip trailer) and recomputes.
            os.replace(temps[1], meta_dest)
            os.replace(temps[0], dest)
            _fsync_dir(dest.parent)
            return stored
        except OSError as exc:
            raise ArchiveError(subject, f"cannot write the archive ({exc.strerror or exc})") from exc
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)

    def open(self, key: ArchiveKey) -> BinaryIO:
        path = self.path(key)
        try:
            return cast(BinaryIO, gzip.open(path, "rb"))
        except FileNotFoundError as exc:
            raise ArchiveError(str(key), f"not in the archive ({path})") from exc
        except OSError as exc:
            raise ArchiveError(str(path), f"cannot be read ({exc.strerror or exc})") from exc

    def info(self, key: ArchiveKey) -> ArchivedLog:
        path = self.path(key)
        try:
            compressed = path.stat().st_size
        except FileNotFoundError as exc:
            raise ArchiveError(str(key), f"not in the archive ({path})") from exc
        meta = _read_meta(path)
        if meta is not None:
            size, stored_compressed, sha256, crc = meta
            if stored_compressed == compressed and _trailer(path) == (crc, size & 0xFFFFFFFF):
                return ArchivedLog(key, path.as_uri(), size, compressed, sha256)
        # No or stale metadata: work it out from the log itself.
        sha, size = hashlib.sha256(), 0
        with self.open(key) as fh:
            for chunk in read_chunks(fh, str(path)):
                sha.update(chunk)
                size += len(chunk)
        return ArchivedLog(key, path.as_uri(), size, compressed, sha.hexdigest())

    def exists(self, key: ArchiveKey) -> bool:
        return self.path(key).is_file()

    def delete(self, key: ArchiveKey) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
            _meta_path(path).unlink(missing_ok=True)
        except OSError as exc:
            raise ArchiveError(str(path), f"cannot delete ({exc.strerror or exc})") from exc

    def list(self, prefix: Prefix = ()) -> Iterator[ArchiveKey]:
        check_prefix(prefix)
        if len(prefix) == len(FIELDS):  # a whole key: that one log, if it is there
            whole = ArchiveKey(*prefix)  # type: ignore[arg-type]
            yield from [whole] if self.exists(whole) else []
            return
        base = self.root.joinpath(*(segment(p) for p in prefix))
        found: builtins.list[ArchiveKey] = []
        depth = len(FIELDS) - len(prefix)
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(base).parts
            if len(rel) != depth - 1:
                continue
            for name in files:
                if name.endswith(DATA) and not name.startswith("."):
                    key = self._key_at(Path(dirpath) / name, [*(segment(p) for p in prefix), *rel])
                    if key is not None:
                        found.append(key)
        yield from sorted(found)

    def _key_at(self, path: Path, dirs: builtins.list[str]) -> ArchiveKey | None:
        meta = _read_json(path)
        if meta is not None:
            with contextlib.suppress(TypeError, ValueError, ArchiveError):
                key = ArchiveKey(*meta["key"])
                if self.path(key) == path:
                    return key
        # No metadata (copied in by hand): the path itself says the key, unless a field was cut.
        return key_from_parts([*dirs, path.name[: -len(DATA)]])


@contextlib.contextmanager
def _temp(dest: Path, temps: builtins.list[Path]) -> Iterator[IO[bytes]]:
    """A new hidden temporary file beside ``dest``, recorded in ``temps`` so the caller removes it."""
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp", delete=False) as fh:
        temps.append(Path(fh.name))
        yield fh


def _meta_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name[: -len(DATA)] + META)


def _read_json(data_path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(_meta_path(data_path).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _read_meta(data_path: Path) -> tuple[int, int, str, int] | None:
    """(size, compressed size, sha256, crc32) from the metadata file, None when absent or malformed."""
    meta = _read_json(data_path)
    if meta is None:
        return None
    values = (meta.get("size"), meta.get("compressed_size"), meta.get("sha256"), meta.get("crc32"))
    size, compressed, sha, crc = values
    if isinstance(size, int) and isinstance(compressed, int) and isinstance(sha, str) and isinstance(crc, int):
        return size, compressed, sha, crc
    return None


def _trailer(path: Path) -> tuple[int, int] | None:
    """CRC32 and size mod 2**32 of the original bytes, from the gzip trailer (the last 8 bytes)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-8, os.SEEK_END)
            crc, size = struct.unpack("<II", fh.read(8))
    except (OSError, struct.error):
        return None
    return crc, size


def _fsync_dir(path: Path) -> None:
    # Makes the renames durable; some filesystems refuse fsync on a directory, which is harmless.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
