"""Structured (JSON) log lines for the worker: ``RESTOCK_LOG_JSON=true``.

One JSON object per line with ``ts`` (UTC ISO 8601), ``level``, ``logger``, ``message`` and any
``extra`` fields a call passed (the pipeline passes ``topic``, ``partition``, ``offset``,
``stage`` and ``dead_letter_id`` with every dead-letter warning).

Examples
--------
>>> import logging
>>> rec = logging.LogRecord("agents.pipeline", logging.WARNING, __file__, 1, "bad %s", ("x",), None)
>>> rec.topic = "orders"
>>> line = JsonFormatter().format(rec)
>>> import json; d = json.loads(line); (d["level"], d["message"], d["topic"])
('WARNING', 'bad x', 'orders')
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a log record as one JSON object (extra fields included)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for ``record``."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v if isinstance(v, str | int | float | bool | type(None)) else repr(v)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


#: client libraries whose connection chatter (bootstrap, metadata refresh, IO loop start/stop for
#: every short-lived admin client of the lag gauges and the readiness probe) is INFO
CLIENT_LOGGERS: tuple[str, ...] = ("kafka", "aiokafka")


def quiet_client_loggers(loglevel: str) -> int:
    """Keep the Kafka client libraries at WARNING unless ``loglevel`` is ``debug``.

    An idle worker at ``info`` otherwise logs about 80 lines a minute of kafka-python connection
    chatter. Returns the level set.

    Examples
    --------
    >>> quiet_client_loggers("info") == logging.WARNING, logging.getLogger("kafka.conn").getEffectiveLevel()
    (True, 30)
    >>> quiet_client_loggers("debug") == logging.DEBUG
    True
    >>> _ = quiet_client_loggers("info")
    """
    level = logging.DEBUG if loglevel.lower() == "debug" else logging.WARNING
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(level)
    return level
