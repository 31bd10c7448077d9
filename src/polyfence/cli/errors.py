"""Library errors to one line each on stderr and an exit code, for every verb; never a traceback.

Exit codes: 0 ok · 1 crash · 2 usage · 3 invalid input · 4 refused translation, not
equivalent, findings at or above ``--fail-on``, or AWS changes pending · 5 an AWS API error
(neither a crash nor a problem with the input file).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from polyfence.errors import (
    ConfigError,
    Diagnostic,
    InputError,
    LossyTranslationError,
    PolyfenceError,
    UnsupportedFormatError,
    UsageError,
)
from polyfence.fidelity import FidelityReport
from polyfence.io.files import line_of
from polyfence.translators.aws.plan import AwsOperationError, OwnershipError

EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_FINDINGS = 4
EXIT_AWS = 5
F = TypeVar("F", bound=Callable[..., Any])


def err(message: str) -> None:
    click.echo(f"polyfence: {message}", err=True)


def located(diag: Diagnostic) -> str:
    """``file[doc]:/pointer (line N): message``: the line is looked up only when printing."""
    line = line_of(diag.source)
    return f"{diag.source} (line {line}): {diag.message}" if line else str(diag)


def handle(
    func: F,
    *,
    report: Callable[[FidelityReport, Any], None] | None = None,
    locate: bool = True,
) -> F:
    """``func`` with every library error mapped to its message and exit code. A refusal prints
    its fidelity report through ``report``; ``locate`` adds input line numbers to errors."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            for diag in exc.diagnostics:
                err(f"error: {located(diag) if locate else diag}")
            sys.exit(EXIT_INPUT)
        except (UnsupportedFormatError, UsageError, ConfigError) as exc:
            err(f"error: {exc}")
            sys.exit(EXIT_USAGE)
        except LossyTranslationError as exc:
            if report is not None:
                report(exc.report, sys.stderr)
            err(str(exc))
            sys.exit(EXIT_FINDINGS)
        except OwnershipError as exc:
            for refusal in exc.refusals:
                err(f"error: refused: {refusal}")
            err("nothing was applied")
            sys.exit(EXIT_INPUT)
        except AwsOperationError as exc:
            err(f"error: {exc}")
            if exc.done:
                err(f"applied before the failure ({len(exc.done)} changes):")
                for line in exc.done:
                    click.echo(f"  {line}", err=True)
            sys.exit(EXIT_AWS)
        except PolyfenceError as exc:
            err(f"error: {exc}")
            sys.exit(EXIT_INPUT)

    return wrapper  # type: ignore[return-value]
