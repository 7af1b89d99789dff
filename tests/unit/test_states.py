"""The import state machine: only the table's moves, each recorded with who and why."""

from __future__ import annotations

import pytest

from store.states import ALLOWED, FINAL, Status


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(ALLOWED) == {None, *Status}


def test_imported_and_duplicate_leave_only_for_a_person() -> None:
    # a replay that reads them differently holds them; nothing re-runs them by itself
    assert ALLOWED[Status.IMPORTED] == frozenset({Status.HELD})
    assert ALLOWED[Status.DUPLICATE] == frozenset({Status.HELD})


def test_only_a_worker_verdict_leaves_processing_for_a_result() -> None:
    reachable_from_elsewhere = {
        to for frm, tos in ALLOWED.items() if frm != Status.PROCESSING for to in tos
    }
    assert Status.IMPORTED not in reachable_from_elsewhere
    assert Status.DUPLICATE not in reachable_from_elsewhere
    assert Status.QUARANTINED not in reachable_from_elsewhere


@pytest.mark.parametrize("status", [Status.HELD, Status.QUARANTINED])
def test_a_person_can_retry_or_reject_what_needs_a_person(status: Status) -> None:
    assert ALLOWED[status] == {Status.RECEIVED, Status.REJECTED}


def test_final_statuses_are_never_claimed_again() -> None:
    for status in FINAL:
        assert Status.PROCESSING not in ALLOWED[status]
