"""Resume state of one copy, and where it is kept (a small Protocol the queue implements).

Why a Protocol: the copy engine knows nothing of Redis. A redelivered task gets
the same ``checkpoint_id``; the store hands back the upload id, the part size and
the source validators, and ListParts (the server's truth) tells which parts
exist. Parts are recorded here too as they complete, but only as a hint: a
process killed between UploadPart and save loses nothing, because ListParts
still sees the part.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

CHECKPOINT_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # v1 had no slice state: it reads as "nothing hashed yet"


@dataclass(frozen=True)
class SourceValidators:
    """What identifies one version of the source: if any differs, the source changed."""

    etag: str | None = None
    last_modified: str | None = None
    length: int | None = None

    def matches(self, other: SourceValidators) -> bool:
        """Equal on every validator both sides know; a source with none never matches."""
        pairs = [
            (self.etag, other.etag),
            (self.last_modified, other.last_modified),
            (self.length, other.length),
        ]
        known = [(a, b) for a, b in pairs if a is not None or b is not None]
        return (
            bool(known)
            and all(a == b for a, b in known)
            and (self.etag is not None or self.last_modified is not None)
        )


@dataclass(frozen=True)
class PartRecord:
    """One uploaded part as CompleteMultipartUpload needs it."""

    number: int
    etag: str
    size: int
    checksum_sha256: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """JSON-serialisable resume state of one multipart copy.

    ``offset``, ``sha256_state`` and ``bytes_uploaded`` are the slice boundary
    (written only when a bounded slice ends, with every part below ``offset``
    uploaded): the next slice asks the source for ``Range: bytes=offset-`` and
    restores the SHA-256 state, so no byte is downloaded or hashed twice.
    ``sha256_state`` is rehashes' serialized state (base64), opaque here.
    """

    bucket: str
    key: str
    upload_id: str
    part_size: int
    source: SourceValidators = field(default_factory=SourceValidators)
    parts: tuple[PartRecord, ...] = ()
    checksum_sha256: bool = False
    offset: int = 0
    sha256_state: str | None = None
    bytes_uploaded: int = 0  # by earlier slices (the asset's bytes_uploaded sums them)
    expected_sha256: str | None = None  # what the finished object must hash to, if known
    # "hash": the first pass of a refetch CAS copy stopped (no upload yet: no key, no id).
    phase: str = "upload"
    version: int = CHECKPOINT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["parts"] = [asdict(p) for p in self.parts]
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Checkpoint:
        data = json.loads(raw)
        if data.get("version") not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported checkpoint version {data.get('version')!r}")
        return cls(
            bucket=str(data["bucket"]),
            key=str(data["key"]),
            upload_id=str(data["upload_id"]),
            part_size=int(data["part_size"]),
            source=SourceValidators(**data.get("source") or {}),
            parts=tuple(PartRecord(**p) for p in data.get("parts") or ()),
            checksum_sha256=bool(data.get("checksum_sha256", False)),
            offset=int(data.get("offset", 0)),
            sha256_state=data.get("sha256_state"),
            bytes_uploaded=int(data.get("bytes_uploaded", 0)),
            expected_sha256=data.get("expected_sha256"),
            phase=str(data.get("phase") or "upload"),
        )


@runtime_checkable
class CheckpointStore(Protocol):
    """Where checkpoints live between attempts (memory, file, Redis)."""

    def load(self, checkpoint_id: str) -> Checkpoint | None: ...

    def save(self, checkpoint_id: str, cp: Checkpoint) -> None: ...

    def clear(self, checkpoint_id: str) -> None: ...


class MemoryCheckpointStore:
    """In-process store: resume across retries inside one process (and in tests)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self, checkpoint_id: str) -> Checkpoint | None:
        with self._lock:
            raw = self._data.get(checkpoint_id)
        return Checkpoint.from_json(raw) if raw is not None else None

    def save(self, checkpoint_id: str, cp: Checkpoint) -> None:
        raw = cp.to_json()  # serialise so stored state never aliases live objects
        with self._lock:
            self._data[checkpoint_id] = raw

    def clear(self, checkpoint_id: str) -> None:
        with self._lock:
            self._data.pop(checkpoint_id, None)


class FileCheckpointStore:
    """One JSON file per checkpoint in a directory, replaced atomically on save.

    Atomic replace (write temp, fsync, rename) means a process killed mid-save
    leaves the previous checkpoint intact, never a torn file.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, checkpoint_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in checkpoint_id)
        return self.directory / f"{safe}.json"

    def load(self, checkpoint_id: str) -> Checkpoint | None:
        try:
            raw = self._path(checkpoint_id).read_text()
        except FileNotFoundError:
            return None
        try:
            return Checkpoint.from_json(raw)
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: start over rather than fail forever

    def save(self, checkpoint_id: str, cp: Checkpoint) -> None:
        path = self._path(checkpoint_id)
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".cp-")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(cp.to_json())
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def clear(self, checkpoint_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(checkpoint_id).unlink()
