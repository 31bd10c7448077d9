"""What dropping part of a rule does to a policy's meaning, by the rule's action: one table for
every reader and writer, so two formats never report the same drop differently.

| action | the rule matches less (a peer, port or the whole rule dropped) | the rule matches more (a constraint dropped) |
|---|---|---|
| allow | narrowed | widened |
| deny | widened | narrowed |
| pass | widened and narrowed: what it handed on now meets the tier's later rules or its end-of-tier drop | widened and narrowed |
| log | nothing: a log rule never decides a connection | nothing |

A writer that drops a whole Pass rule where the passed traffic can only meet isolation knows
more than this table (narrowed only) and says so itself.
"""

from __future__ import annotations

import enum

from polyfence.fidelity import Effect
from polyfence.model.policy import Action


class Match(enum.Enum):
    """How the rule's match changes."""

    LESS = "less"  # a peer, port or the whole rule dropped
    MORE = "more"  # a constraint dropped


_LESS: dict[Action, tuple[Effect, ...]] = {
    Action.ALLOW: (Effect.NARROWED,),
    Action.DENY: (Effect.WIDENED,),
    Action.PASS: (Effect.WIDENED, Effect.NARROWED),
    Action.LOG: (),
}
_MORE: dict[Action, tuple[Effect, ...]] = {
    Action.ALLOW: (Effect.WIDENED,),
    Action.DENY: (Effect.NARROWED,),
    Action.PASS: (Effect.WIDENED, Effect.NARROWED),
    Action.LOG: (),
}


def effect_of(action: Action, match: Match = Match.LESS) -> tuple[Effect, ...]:
    """The effects a rule of ``action`` matching less (or more) can have; empty: none."""
    return (_LESS if match is Match.LESS else _MORE)[action]
