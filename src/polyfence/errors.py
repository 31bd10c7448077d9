"""Typed errors. The library raises these and never prints or exits; the CLI maps them to exit codes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from polyfence.model.provenance import SourceRef

if TYPE_CHECKING:
    from polyfence.fidelity import FidelityReport


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in an input, located precisely (file, document index, JSON pointer)."""

    source: SourceRef
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class PolyfenceError(Exception):
    """Base of every error polyfence raises on purpose."""


class InputError(PolyfenceError):
    """Invalid input; carries every problem found, not only the first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("; ".join(str(d) for d in self.diagnostics) or "invalid input")


class UnsupportedFormatError(PolyfenceError):
    """A format name or document kind no registered translator handles."""


class LossyTranslationError(PolyfenceError):
    """A translation was refused: it would widen (or, with ``exact``, change) meaning."""

    def __init__(self, message: str, report: FidelityReport) -> None:
        self.report = report
        super().__init__(message)


class UsageError(PolyfenceError):
    """A bad argument (unknown framework id, severity …): the CLI exits 2."""


class ConfigError(PolyfenceError):
    """A bad option or evaluation-profile value."""


class OutputError(PolyfenceError):
    """An output that cannot be written (a directory, a path under a file, no permission …).

    The CLI prints it as one line naming the path and the operating system's reason, exit 3.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: cannot write: {reason}")
