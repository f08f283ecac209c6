"""Seal raw source URLs at rest in Redis: presigned signatures must not sit in clear.

The worker needs the full URL (signature included) to download, so it cannot be
redacted like everything else; with GENBLAZE_SOURCE_KEY (a Fernet key shared by
the submitters and the workers) it is stored encrypted and authenticated.
Without a key it is stored as is (development default) - documented, not hidden.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

_PREFIX = "fernet:"


class SourceRecord(BaseModel):
    """What a worker needs to fetch one asset, stored sealed per asset until it ends.

    Built by the submitter (`build_submission`), read by the worker (`process_asset`);
    the raw `url` (signature included) is never served by the API or logged.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str
    sha256: str | None = None  # the hash the submitter expects, checked after the copy


class SourceSealer:
    """seal()/unseal() for source records; unseal also accepts unsealed legacy values."""

    def __init__(self, key: str | None) -> None:
        self._fernet = None
        if key:
            from cryptography.fernet import Fernet  # lazy: only deployments with a key pay

            self._fernet = Fernet(key.encode())

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, text: str) -> str:
        if self._fernet is None:
            return text
        return _PREFIX + self._fernet.encrypt(text.encode()).decode()

    def seal_source(self, record: SourceRecord) -> str:
        """The record as stored: its JSON, sealed when a key is set."""
        return self.seal(record.model_dump_json())

    def unseal_source(self, text: str) -> SourceRecord:
        """The record from its stored form (sealed or not)."""
        return SourceRecord.model_validate_json(self.unseal(text))

    def unseal(self, text: str) -> str:
        if not text.startswith(_PREFIX):
            return text
        if self._fernet is None:
            raise ValueError("source is sealed but GENBLAZE_SOURCE_KEY is not set on this worker")
        return self._fernet.decrypt(text[len(_PREFIX) :].encode()).decode()


def is_sealed(text: str) -> bool:
    """True for a value `SourceSealer.seal` encrypted (safe to keep at rest)."""
    return text.startswith(_PREFIX)
