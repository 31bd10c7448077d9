"""effect_of: one test per row of its table (polyfence.rules.effects)."""

from __future__ import annotations

import pytest

from polyfence.fidelity import Effect
from polyfence.model.policy import Action
from polyfence.rules.effects import Match, effect_of

W, N = Effect.WIDENED, Effect.NARROWED


@pytest.mark.parametrize(
    ("action", "less", "more"),
    [
        (Action.ALLOW, (N,), (W,)),
        (Action.DENY, (W,), (N,)),
        (Action.PASS, (W, N), (W, N)),
        (Action.LOG, (), ()),
    ],
    ids=["allow", "deny", "pass", "log"],
)
def test_effect_of_row(action: Action, less: tuple[Effect, ...], more: tuple[Effect, ...]) -> None:
    assert effect_of(action) == less
    assert effect_of(action, Match.LESS) == less
    assert effect_of(action, Match.MORE) == more


def test_every_action_has_a_row() -> None:
    for action in Action:
        for match in Match:
            assert isinstance(effect_of(action, match), tuple)
