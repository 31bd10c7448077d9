"""Where a piece of the model came from, so every loss and finding can point at its source."""

from __future__ import annotations

from dataclasses import dataclass


def escape_pointer_token(token: str | int) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(base: str, *tokens: str | int) -> str:
    """Append tokens to a JSON pointer; ``join_pointer('/spec', 'ingress', 0) == '/spec/ingress/0'``."""
    return base + "".join("/" + escape_pointer_token(t) for t in tokens)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """A location in an input: file, 0-based document index within it, JSON pointer inside it."""

    file: str | None = None
    document: int | None = None
    pointer: str = ""
    format: str | None = None

    def child(self, *tokens: str | int) -> SourceRef:
        """The location of a field below this one."""
        return SourceRef(self.file, self.document, join_pointer(self.pointer, *tokens), self.format)

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.document is not None:
            where += f"[{self.document}]"
        return f"{where}:{self.pointer or '/'}"
