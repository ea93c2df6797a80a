"""Dead letters on ``restock.dlq``: the envelope of a message restock could not apply."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
)

from schemas.common import (
    MAX_ERROR_MESSAGE_CHARS,
    Base64Str,
    DeadLetterStage,
    Identifier,
    Offset,
    SchemaVersion,
    UtcDatetime,
    WireModel,
)

__all__ = [
    "DeadLetter",
]

# --------------------------------------------------------------------------------------------
# restock.dlq
# --------------------------------------------------------------------------------------------


class DeadLetter(WireModel):
    """Envelope of a message restock could not apply (topic ``restock.dlq``).

    Attributes
    ----------
    dead_letter_id : str
        Deterministic id, see :meth:`from_failure`.
    source_topic : str
        Topic of the failed message.
    partition, offset : int
        Its partition and offset (>= 0).
    key_b64 : str or None
        The original key bytes, standard base64, or None when the message had no key.
    value_b64 : str
        The original value bytes, standard base64.
    stage : {"decode", "validate", "process", "late", "fence", "missing_key", "wrong_partition"}
        Where it failed: ``decode`` a record of a topic that has no decoder (not an input
        topic); ``validate`` not UTF-8, not JSON, a schema violation, or a message key other
        than the payload's ``sku@location``; ``process`` applying it raised; ``late`` too late
        for its demand period; ``fence`` rejected by the offset fence; ``missing_key`` a
        record without a key; ``wrong_partition`` a record on another partition than its
        key's under Kafka's default (murmur2) partitioner (one partition owns a SKU).
    error_type, error_message : str
        Exception class name and message.
    failed_at : datetime
        Processing (wall-clock) time of the failure, UTC.
    occurred_at : datetime or None
        Event time of the failed message, when it could be decoded.
    value_size : int or None
        Size of the original value in bytes.
    value_truncated : bool
        True when only the first ``max_value_bytes`` of a huge value are kept (so the dead
        letter itself fits in a Kafka message); the full value stays at the source
        topic/partition/offset for as long as that topic's retention keeps it.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> dl = DeadLetter.from_failure("orders", 0, 42, b"A@uk", b"not json", "decode",
    ...                              ValueError("boom"), datetime(2024, 3, 1, tzinfo=timezone.utc))
    >>> dl.original_value(), dl.error_type, dl.key
    (b'not json', 'ValueError', 'orders/0/42')

    """

    schema_version: SchemaVersion = 1
    dead_letter_id: Identifier
    source_topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    partition: Offset
    offset: Offset
    key_b64: Base64Str | None = None
    value_b64: Base64Str
    stage: DeadLetterStage
    error_type: Annotated[str, StringConstraints(min_length=1)]
    error_message: str
    failed_at: UtcDatetime
    occurred_at: UtcDatetime | None = None
    value_size: Annotated[int, Field(ge=0)] | None = None
    value_truncated: bool = False

    @property
    def key(self) -> str:
        """Kafka key of the dead letter: ``"{source_topic}/{partition}/{offset}"``."""
        return f"{self.source_topic}/{self.partition}/{self.offset}"

    @staticmethod
    def make_id(source_topic: str, partition: int, offset: int, stage: str) -> str:
        """Return the deterministic dead-letter id.

        Parameters
        ----------
        source_topic : str
            Topic of the failed message.
        partition, offset : int
            Its partition and offset.
        stage : str
            Failure stage.

        Returns
        -------
        str
            First 32 hex characters of ``sha256("{topic}/{partition}/{offset}/{stage}")``.

        Examples
        --------
        >>> DeadLetter.make_id("orders", 0, 42, "decode") == DeadLetter.make_id(
        ...     "orders", 0, 42, "decode")
        True
        >>> len(DeadLetter.make_id("orders", 0, 42, "decode"))
        32

        """
        digest = hashlib.sha256(f"{source_topic}/{partition}/{offset}/{stage}".encode())
        return digest.hexdigest()[:32]

    @classmethod
    def from_failure(
        cls,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        stage: DeadLetterStage,
        exc_or_message: BaseException | str,
        failed_at: datetime,
        *,
        occurred_at: datetime | None = None,
        max_value_bytes: int = 512 * 1024,
    ) -> DeadLetter:
        """Build the dead letter of a failed message.

        Parameters
        ----------
        source_topic : str
            Topic the message was consumed from.
        partition, offset : int
            Its partition and offset.
        key : bytes or None
            Original key bytes (None when absent).
        value : bytes or None
            Original value bytes (None, a tombstone, is stored as empty bytes).
        stage : {"decode", "validate", "process", "late", "fence", "missing_key", "wrong_partition"}
            Where processing failed.
        exc_or_message : BaseException or str
            The exception (its class name becomes ``error_type``) or a message (``error_type``
            is then ``"Error"``). Messages longer than 8192 characters are truncated.
        failed_at : datetime
            Processing time of the failure (aware).
        occurred_at : datetime or None, keyword-only
            Event time of the message, when known.
        max_value_bytes : int, keyword-only
            Values longer than this (bytes) are truncated (``value_truncated=True``) so that the
            base64 envelope stays below Kafka's default 1 MB message limit.

        Returns
        -------
        DeadLetter
            With ``dead_letter_id = DeadLetter.make_id(source_topic, partition, offset, stage)``,
            so re-processing the same message after a crash yields the same id.

        Raises
        ------
        pydantic.ValidationError
            When an argument violates the model (naive ``failed_at``, negative offset...).

        Examples
        --------
        >>> from datetime import datetime, timezone
        >>> dl = DeadLetter.from_failure("inventory", 3, 7, None, b"{}", "late",
        ...     "period already closed", datetime(2024, 3, 1, tzinfo=timezone.utc))
        >>> dl.error_type, dl.error_message, dl.key_b64
        ('Error', 'period already closed', None)

        """
        if isinstance(exc_or_message, BaseException):
            error_type = type(exc_or_message).__name__
            message = str(exc_or_message) or repr(exc_or_message)
        else:
            error_type = "Error"
            message = str(exc_or_message)
        if len(message) > MAX_ERROR_MESSAGE_CHARS:
            message = message[: MAX_ERROR_MESSAGE_CHARS - 15] + "... (truncated)"
        return cls(
            dead_letter_id=cls.make_id(source_topic, partition, offset, stage),
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            key_b64=None if key is None else base64.b64encode(bytes(key)).decode("ascii"),
            value_b64=base64.b64encode(bytes(value or b"")[:max_value_bytes]).decode("ascii"),
            stage=stage,
            error_type=error_type,
            error_message=message,
            failed_at=failed_at,
            occurred_at=occurred_at,
            value_size=len(value or b""),
            value_truncated=len(value or b"") > max_value_bytes,
        )

    def original_value(self) -> bytes:
        """Return the original message value bytes.

        Examples
        --------
        >>> from schemas.export import example_events
        >>> example_events()["dead_letter"].original_value()
        b'{"kind":"order_placed","quantity":-1}'

        """
        return base64.b64decode(self.value_b64)

    def original_key(self) -> bytes | None:
        """Return the original message key bytes, or None when it had no key.

        Examples
        --------
        >>> from schemas.export import example_events
        >>> example_events()["dead_letter"].original_key()
        b'85123A@uk'

        """
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)
