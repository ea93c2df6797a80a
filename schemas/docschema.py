"""Docstring to JSON Schema: model and field descriptions come from the numpydoc docstrings."""

from __future__ import annotations

import inspect
import re
from typing import Any

__all__ = [
    "docstring_sections",
    "document_schema",
]

_SECTION_RE = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.MULTILINE)


def docstring_sections(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a numpy-style docstring into its summary and its ``Attributes`` descriptions."""
    text = inspect.cleandoc(doc or "")
    headings = list(_SECTION_RE.finditer(text))
    summary = text[: headings[0].start()].strip() if headings else text.strip()
    attributes: dict[str, str] = {}
    for i, heading in enumerate(headings):
        if heading.group(1) != "Attributes":
            continue
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        names: list[str] = []
        for line in text[heading.end() : end].splitlines():
            if not line.strip():
                continue
            if not line.startswith(" "):
                names = [n.strip() for n in line.split(" : ")[0].split(",")]
                continue
            for name in names:
                prev = attributes.get(name)
                attributes[name] = f"{prev} {line.strip()}" if prev else line.strip()
    return summary, attributes


def document_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    """Describe the JSON Schema from the numpy docstrings; mark ``kind`` as required.

    Decoders need ``kind`` to pick the model, so it is required on the wire even though the
    Python constructors default it.
    """
    summary, _ = docstring_sections(cls.__dict__.get("__doc__"))
    schema["description"] = " ".join(summary.split())
    properties = schema.get("properties", {})
    for klass in reversed(cls.__mro__):
        _, attributes = docstring_sections(klass.__dict__.get("__doc__"))
        for name, text in attributes.items():
            if name in properties:
                properties[name]["description"] = text
    if "kind" in properties:
        required = schema.setdefault("required", [])
        if "kind" not in required:
            required.insert(0, "kind")
