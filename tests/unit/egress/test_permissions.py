"""Who may do what: the pure rules, as a readable matrix."""

import types

import pytest

from enclave.errors import Conflict, Invalid, PermissionDenied
from enclave.models import Role

from egress_review import permissions as perm
from egress_review.permissions import Person
from egress_review.workflow import Decision, FileStatus, RequestStatus

ann = Person("ann", Role.researcher, frozenset({"cardio"}))
bob = Person("bob", Role.researcher, frozenset({"other"}))
sam = Person("sam", Role.steward)
ada = Person("ada", Role.admin)
stew_member = Person("sid", Role.steward, frozenset({"cardio"}))  # e.g. a researcher later made steward
stew_requester = Person("ann", Role.steward)  # the requester whose role changed


def req(status=RequestStatus.submitted, requester="ann", project="cardio", direction="out"):
    return types.SimpleNamespace(id=1, status=status, requester=requester, project=project, direction=direction)


def file(check="pass", status=FileStatus.pending):
    return types.SimpleNamespace(check_status=check, status=status, path="t.csv")


@pytest.mark.parametrize("person, ok, reason", [
    (sam, True, None), (ada, True, None), (ann, False, "not_reviewer"), (bob, False, "not_reviewer"),
    (stew_member, False, "member_of_project"), (stew_requester, False, "own_request"),
], ids=["steward", "admin", "requester", "other-researcher", "steward-member", "steward-requester"])
def test_who_may_review(person, ok, reason):
    if ok:
        perm.check_can_review(person, req())
    else:
        with pytest.raises(PermissionDenied) as e:
            perm.check_can_review(person, req())
        assert e.value.reason == reason


@pytest.mark.parametrize("status", [RequestStatus.changes_requested, RequestStatus.released,
                                    RequestStatus.rejected, RequestStatus.withdrawn])
def test_no_review_outside_review(status):
    with pytest.raises(Conflict):
        perm.check_can_review(sam, req(status))


def test_decision_rules():
    perm.check_decision(file(), Decision.approve, "", "")
    with pytest.raises(Invalid, match="comment"):
        perm.check_decision(file(), Decision.reject, " ", "")
    with pytest.raises(Invalid, match="override reason"):
        perm.check_decision(file("fail"), Decision.approve, "fine", "")
    perm.check_decision(file("fail"), Decision.approve, "", "rounded already; false positive")
    perm.check_decision(file("fail"), Decision.request_changes, "round it", "")
    with pytest.raises(Conflict):
        perm.check_decision(file(status=FileStatus.superseded), Decision.approve, "", "")


def test_independent_review_visibility():
    r = req(RequestStatus.under_review)
    others = [types.SimpleNamespace(steward="sue")]
    assert not perm.can_see_other_decisions(sam, r, others)
    assert perm.can_see_other_decisions(sam, r, others + [types.SimpleNamespace(steward="sam")])
    assert not perm.can_see_other_decisions(ann, r, others)
    assert perm.can_see_other_decisions(ann, req(RequestStatus.changes_requested), others)
    assert perm.can_see_other_decisions(ann, req(RequestStatus.released), others)


def test_download_only_requester_only_released():
    perm.check_can_download(ann, req(RequestStatus.released), file(status=FileStatus.approved))
    for who in (bob, sam, ada):
        with pytest.raises(PermissionDenied):
            perm.check_can_download(who, req(RequestStatus.released), file(status=FileStatus.approved))
    with pytest.raises(PermissionDenied):
        perm.check_can_download(ann, req(RequestStatus.under_review), file(status=FileStatus.approved))
    with pytest.raises(PermissionDenied):
        perm.check_can_download(ann, req(RequestStatus.released), file(status=FileStatus.superseded))


def test_previews_are_for_reviewers_only():
    perm.check_can_preview(sam, req())
    for who in (ann, bob, stew_requester):
        with pytest.raises(PermissionDenied):
            perm.check_can_preview(who, req())


def test_view_withdraw_update():
    perm.check_can_view_request(ann, req())
    perm.check_can_view_request(sam, req())
    with pytest.raises(PermissionDenied):
        perm.check_can_view_request(bob, req())
    with pytest.raises(PermissionDenied):
        perm.check_can_withdraw(bob, req())
    with pytest.raises(Conflict):
        perm.check_can_withdraw(ann, req(RequestStatus.released))
    with pytest.raises(Conflict):
        perm.check_can_update(ann, req(RequestStatus.under_review))
    perm.check_can_update(ann, req(RequestStatus.changes_requested))
