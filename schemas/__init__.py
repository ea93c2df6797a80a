"""restock wire contracts: pydantic v2 models of every Kafka message (imports pydantic only).

See :mod:`schemas.events` for the models and the decoding API, and :mod:`schemas.export` for
the generated JSON Schema files (``schemas/json/``) and AsyncAPI document
(``schemas/asyncapi.yaml``).

Examples
--------
>>> import schemas
>>> schemas.decode_for_topic_role("orders", b"{}")
Traceback (most recent call last):
...
schemas.codec.EventValidationError: kind: Unable to extract tag using discriminator 'kind'

"""

from __future__ import annotations

from schemas.events import *  # noqa: F403
from schemas.events import __all__ as _events_all

__all__ = list(_events_all)
