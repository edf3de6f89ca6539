"""The workflow tables are complete and consistent, and the generated diagram is what the docs show."""

from pathlib import Path

import pytest

from egress_review import workflow
from egress_review.workflow import (
    STATUS_EVENTS,
    STATUS_OWNERS,
    TRANSITION_ACTORS,
    VALID_TRANSITIONS,
    Decision,
    FileStatus,
    Owner,
    RequestStatus,
)

D, F, S = Decision, FileStatus, RequestStatus


@pytest.mark.parametrize("table", [VALID_TRANSITIONS, STATUS_OWNERS, STATUS_EVENTS],
                         ids=["transitions", "owners", "events"])
def test_every_status_appears_in_every_table(table):
    assert set(table) == set(RequestStatus)


def test_transition_actors_match_valid_transitions():
    pairs = {(a, b) for a, nxt in VALID_TRANSITIONS.items() for b in nxt}
    assert pairs == set(TRANSITION_ACTORS)
    for (a, _), who in TRANSITION_ACTORS.items():
        assert who != Owner.nobody


def test_every_way_into_a_status_writes_the_same_event():
    for (_, b), move in workflow.TRANSITIONS.items():
        assert STATUS_EVENTS[b] == move.event


@pytest.mark.parametrize("old, new, who, refusal", [
    (S.submitted, S.under_review, Owner.researcher, "wrong_actor"),  # a researcher cannot start a review
    (S.under_review, S.released, Owner.researcher, "wrong_actor"),  # ...nor release their own request
    (S.changes_requested, S.submitted, Owner.steward, "wrong_actor"),  # a steward cannot resubmit for them
    (S.under_review, S.withdrawn, Owner.steward, "wrong_actor"),
    (S.released, S.submitted, Owner.researcher, "invalid_transition"),  # final is final
    (S.submitted, S.released, Owner.steward, "invalid_transition"),  # no skipping the review
], ids=["researcher-starts-review", "researcher-releases", "steward-resubmits", "steward-withdraws",
        "reopen-released", "skip-review"])
def test_set_status_enforces_the_table_and_its_actor(old, new, who, refusal):
    from types import SimpleNamespace

    from enclave.errors import EnclaveError

    request = SimpleNamespace(id=7, status=old, project="p")
    with pytest.raises(EnclaveError) as exc:
        workflow.set_status(None, request, new, "someone", acting_as=who)  # refused before any write
    assert exc.value.reason == refusal and request.status == old


def test_final_statuses_have_no_owner_and_open_ones_do():
    for s in RequestStatus:
        assert (STATUS_OWNERS[s] == Owner.nobody) == (s in workflow.FINAL)


def test_every_status_is_reachable_from_submission():
    seen, todo = {S.submitted}, [S.submitted]
    while todo:
        for nxt in VALID_TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(RequestStatus)


def test_docs_show_the_generated_diagram():
    doc = (Path(__file__).resolve().parents[3] / "docs" / "egress.md").read_text()
    assert workflow.mermaid() in doc, "regenerate the diagram in docs/egress.md from workflow.mermaid()"


@pytest.mark.parametrize("decisions, required, expected", [
    ([], 2, F.pending),
    ([D.approve], 2, F.pending),
    ([D.approve, D.approve], 2, F.approved),
    ([D.approve], 1, F.approved),
    ([D.approve, D.reject], 2, F.rejected),
    ([D.approve, D.request_changes], 2, F.changes_requested),
    ([D.reject, D.request_changes], 2, F.rejected),
], ids=["none", "one-of-two", "two-approvals", "one-needed", "approve+reject", "approve+changes", "reject+changes"])
def test_file_outcome(decisions, required, expected):
    assert workflow.file_outcome(decisions, required) == expected


@pytest.mark.parametrize("files, expected", [
    ([F.approved, F.pending], None),
    ([F.approved, F.approved, F.superseded], S.released),
    ([F.approved, F.changes_requested], S.changes_requested),
    ([F.rejected, F.changes_requested], S.changes_requested),
    ([F.rejected, F.approved], S.released),
    ([F.rejected, F.rejected], S.rejected),
    ([F.superseded], None),
], ids=["one-pending", "all-approved", "changes", "changes-and-rejected", "partial-release", "all-rejected",
        "only-superseded"])
def test_request_outcome(files, expected):
    assert workflow.request_outcome(files) == expected
