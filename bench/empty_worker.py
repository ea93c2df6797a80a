"""The framework ceiling: a Faust worker whose agent only takes batches and acks them.

Built with the same ``faust.App`` arguments as :func:`streams.app.create_app`
(:func:`streams.app.faust_app_kwargs`) and the same
``noack_take(flush_every_events, within=flush_interval_s)`` + per-event ``ack`` loop, on the
same three input topics, from the same ``RESTOCK_*`` settings; no decode, no state, no Redis,
no produce. Started by ``bench/common.py`` (``EmptyWorker``); ``/health/ready`` answers 200
once partitions are assigned.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faust  # noqa: E402
from faust.worker import Worker  # noqa: E402

from streams.app import faust_app_kwargs  # noqa: E402
from streams.faust_compat import limit_fetch_wait  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import input_roles  # noqa: E402

s = Settings()
limit_fetch_wait(s.fetch_max_wait_ms)
app = faust.App(s.app_id, **faust_app_kwargs(s))
inputs = app.topic(*input_roles(s), key_serializer="raw", value_serializer="raw")
state = {"ready": False}


@app.agent(inputs, name="empty")
async def empty(stream: faust.StreamT) -> None:
    async for events in stream.noack_take(s.flush_every_events, within=s.flush_interval_s):
        for event in events:
            await stream.ack(event)


@app.on_partitions_assigned.connect
async def _assigned(app: faust.App, assigned: set, **_: Any) -> None:  # type: ignore[type-arg]
    state["ready"] = True


@app.on_partitions_revoked.connect
async def _revoked(app: faust.App, revoked: set, **_: Any) -> None:  # type: ignore[type-arg]
    state["ready"] = False


@app.page("/health/ready")
async def ready(web: Any, request: Any) -> Any:
    return web.json({"ready": state["ready"]}, status=200 if state["ready"] else 503)


if __name__ == "__main__":
    Worker(app, loglevel="warn", quiet=True).execute_from_commandline()
