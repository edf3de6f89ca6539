"""Who may start a notebook in which project: every rule, its reason code and a message a person understands."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.errors import PermissionDenied
from enclave.models import Account, AccountStatus, Membership, Project, ProjectStatus, Role
from enclave.permissions import AccountState, account_state, can_spawn, check_can_spawn

TODAY = dt.date(2026, 6, 15)


def _account(status=AccountStatus.active, id=1, enrolled=True):
    when = dt.datetime(2026, 1, 2) if enrolled else None
    return Account(id=id, username="ann", role=Role.researcher, status=status,
                   totp_secret=b"sealed" if enrolled else None, enrolled_at=when)


def _project(members=(1,), status=ProjectStatus.active, start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31)):
    p = Project(id=7, slug="cohort", title="Cohort", data_dir="/x", status=status, start_date=start, end_date=end)
    p.memberships = [Membership(project_id=7, account_id=a) for a in members]
    return p


def test_member_of_an_open_project_may_start():
    check_can_spawn(_account(), _project(), TODAY)
    assert can_spawn(_account(), _project(), TODAY)


def test_last_day_is_still_allowed_and_no_end_date_never_expires():
    assert can_spawn(_account(), _project(end=TODAY), TODAY)
    assert can_spawn(_account(), _project(end=None), TODAY)
    assert can_spawn(_account(), _project(start=TODAY), TODAY)


@pytest.mark.parametrize(
    "account, project, reason, words",
    [
        pytest.param(None, _project(), "unknown_account", "not registered", id="unknown-account"),
        pytest.param(_account(AccountStatus.disabled), _project(), "account_disabled", "disabled", id="disabled-user"),
        pytest.param(_account(AccountStatus.pending), _project(), "account_not_active", "enrolment", id="pending-user"),
        pytest.param(_account(), None, "no_project", "no such project", id="no-project"),
        pytest.param(_account(), _project(members=(2,)), "not_member", "not a member of project 'cohort'", id="non-member"),
        pytest.param(_account(), _project(status=ProjectStatus.suspended), "project_suspended", "is suspended", id="suspended"),
        pytest.param(_account(), _project(status=ProjectStatus.closed), "project_closed", "is closed", id="closed"),
        pytest.param(_account(), _project(start=dt.date(2026, 7, 1)), "project_not_started", "starts on 2026-07-01",
                     id="not-started"),
        pytest.param(_account(), _project(end=dt.date(2026, 6, 14)), "project_expired", "ended on 2026-06-14",
                     id="past-end-date"),
    ],
)
def test_refusals(account, project, reason, words):
    with pytest.raises(PermissionDenied) as exc:
        check_can_spawn(account, project, TODAY)
    assert exc.value.reason == reason
    assert words in str(exc.value)
    assert exc.value.status == 403
    assert not can_spawn(account, project, TODAY)


def test_disabled_user_is_refused_even_as_member_of_an_open_project():
    with pytest.raises(PermissionDenied, match="disabled"):
        check_can_spawn(_account(AccountStatus.disabled), _project(), TODAY)


def test_an_active_account_that_never_finished_enrolment_may_not_act():
    """One rule for every caller: 'active' without a TOTP secret or an enrolment date is not enough
    (OIDC used to skip the enrolment date)."""
    half = _account(enrolled=False)
    assert account_state(half) is AccountState.not_enrolled
    half.totp_secret = b"sealed"  # a secret but no enrolment date: still refused
    assert account_state(half) is AccountState.not_enrolled
    with pytest.raises(PermissionDenied) as exc:
        check_can_spawn(half, _project(), TODAY)
    assert exc.value.reason == "account_not_active"
