"""An endpoint of the universal inventory, which carries its namespace's and account's labels.

A real inventory holds one Namespace per name, but on *every* cluster a namespace named
``shop`` may carry any labels. The universal inventory (``semantics.universe``) therefore
gives each endpoint the labels of its own namespace and service account; the matcher reads
them from here instead of from the inventory's single Namespace of that name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from polyfence.inventory import Endpoint


@dataclass(frozen=True, slots=True)
class SymbolicEndpoint(Endpoint):
    """An endpoint whose namespace labels (and, when set, service-account labels) are its own."""

    namespace_labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    account_labels: Mapping[str, str] | None = field(default=None, hash=False)
