"""polyfence: network policy across Kubernetes, Calico, Cilium, Istio and AWS security groups.

The public API for scripts: ``load``, ``convert``, ``compare``, ``connectivity``, ``explain``,
``audit``.
"""

from importlib import metadata as _metadata

from polyfence.api import (
    Bundle,
    ConversionResult,
    audit,
    compare,
    connectivity,
    convert,
    explain,
    load,
)
from polyfence.errors import (
    InputError,
    LossyTranslationError,
    PolyfenceError,
    UnsupportedFormatError,
    UsageError,
)
from polyfence.fidelity import Effect, FidelityReport, Loss
from polyfence.semantics.compare import Comparison, Relation

__version__ = _metadata.version("polyfence")  # one source: pyproject.toml

__all__ = [
    "Bundle",
    "Comparison",
    "ConversionResult",
    "Effect",
    "FidelityReport",
    "InputError",
    "Loss",
    "LossyTranslationError",
    "PolyfenceError",
    "Relation",
    "UnsupportedFormatError",
    "UsageError",
    "__version__",
    "audit",
    "compare",
    "connectivity",
    "convert",
    "explain",
    "load",
]
