"""The login's reason vocabulary covers every status an account can have."""

from __future__ import annotations

import pytest

from flexnet.authn.decision import Reason
from flexnet.lifecycle.status import EffectiveStatus, State
from flexnet.models import LockCause

STATUSES = [
    *[(state, None) for state in State if state is not State.ACTIVE],
    *[(State.LOCKED, cause) for cause in LockCause],  # only a lock has a cause
]


@pytest.mark.parametrize(("state", "cause"), STATUSES)
def test_every_state_and_lock_cause_has_a_reason(state: State, cause: LockCause | None) -> None:
    """A cause added to the model without a reason would raise on the login path: the
    login would go unanswered instead of being refused."""
    reason = Reason.of_status(EffectiveStatus(state, cause=cause))

    assert reason.startswith(f"user_{state.value}")
    assert reason.endswith(cause.value if cause else state.value)
