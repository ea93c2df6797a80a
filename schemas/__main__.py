"""``python -m schemas [--check]``: same as ``python -m schemas.export``."""

from __future__ import annotations

from schemas.export import main

if __name__ == "__main__":
    raise SystemExit(main())
