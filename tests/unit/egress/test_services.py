"""The whole flow through the service layer with real files, checks, store and audit log."""

import json

import pytest
from sqlalchemy import func, select

from enclave import audit, db
from enclave.errors import Conflict, EnclaveError, Invalid, PermissionDenied
from enclave.models import AuditEvent

from egress_review import downloads, review, store, submission
from egress_review.models import ReleaseRequest, RequestFile, Review
from egress_review.workflow import Decision
from tests.conftest import BOTH
from tests.unit.egress.conftest import SAFE_CSV


def _events(url, prefix="egress."):
    with db.transaction(url) as s:
        return [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
                if e.action.startswith(prefix)]


def _audit_ok(url):
    with db.transaction(url) as s:
        return audit.verify(s).ok


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_two_stewards_release_exactly_the_submitted_bytes(egress):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    egress.write("table.csv", SAFE_CSV.replace("120", "3"))  # edited after submission
    [(fid, path, status, sha)] = egress.files(rid)
    assert egress.status(rid) == "submitted" and status == "pending"
    egress.decide("sam", fid)
    assert egress.status(rid) == "under_review"
    egress.decide("sue", fid)
    assert egress.status(rid) == "released"
    name, data, size, got_sha = downloads.fetch(egress.url, egress.state_dir, "ann", fid)
    assert name == "table.csv" and data.read() == SAFE_CSV.encode() and got_sha == sha
    assert _events(egress.url) == ["egress.submit", "egress.review", "egress.review_started", "egress.review",
                                   "egress.release", "egress.download"]
    assert _audit_ok(egress.url)


def test_checks_run_on_the_stored_copy_and_are_kept(egress):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    with db.transaction(egress.url) as s:
        f = s.execute(select(RequestFile)).scalar_one()
        verdict = json.loads(f.verdict)
    assert verdict["status"] == f.check_status and verdict["status"] in {"pass", "warn", "review", "fail"}
    assert verdict["file"] == "table.csv"
    assert egress.status(rid) == "submitted"


@pytest.mark.parametrize("who, project, message", [
    ("sam", "cardio", "only researchers"),
    ("bob", "cardio", "not a member"),
    ("ada", "cardio", "only researchers"),
], ids=["steward", "other-project", "admin"])
def test_submit_refused_for_wrong_role_or_project(egress, who, project, message):
    egress.write("table.csv", SAFE_CSV)
    with pytest.raises(PermissionDenied, match=message):
        egress.submit(as_=who, project=project)
    with db.transaction(egress.url) as s:
        assert s.execute(select(func.count(ReleaseRequest.id))).scalar_one() == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"context": "  "}, "context"),
    ({"controls": ""}, "controls"),
    ({"paths": ()}, "no files"),
    ({"paths": ("../x.csv",)}, "leaves"),
    ({"paths": ("missing.csv",)}, "does not exist"),
], ids=["no-context", "no-controls", "no-files", "traversal", "missing"])
def test_bad_submissions_leave_nothing(egress, kwargs, message):
    egress.write("table.csv", SAFE_CSV)
    with pytest.raises(EnclaveError, match=message):
        egress.submit(**kwargs)
    with db.transaction(egress.url) as s:
        assert s.execute(select(func.count(ReleaseRequest.id))).scalar_one() == 0
    assert _events(egress.url) == []


def test_requester_and_project_members_cannot_review(egress):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    [(fid, *_)] = egress.files(rid)
    with pytest.raises(PermissionDenied, match="only stewards"):
        egress.decide("ann", fid)
    with pytest.raises(PermissionDenied, match="only stewards"):
        egress.decide("bob", fid)
    assert egress.status(rid) == "submitted"


def test_same_steward_cannot_count_twice_and_third_is_refused(egress):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    [(fid, *_)] = egress.files(rid)
    egress.decide("sam", fid)
    egress.decide("sam", fid)  # changing one's mind is allowed, it is still one decision
    assert egress.status(rid) == "under_review"
    egress.decide("ada", fid)
    assert egress.status(rid) == "released"
    with pytest.raises(Conflict, match="not waiting for review"):
        egress.decide("sue", fid)


def test_failed_check_needs_override_reason(egress):
    egress.write("bundle.zip", b"PK\x03\x04" + b"\x00" * 100)  # archives are refused by the checks
    rid = egress.submit(paths=("bundle.zip",))
    [(fid, *_)] = egress.files(rid)
    with db.transaction(egress.url) as s:
        assert s.get(RequestFile, fid).check_status == "fail"
    with pytest.raises(Invalid, match="override reason"):
        egress.decide("sam", fid)
    egress.decide("sam", fid, override_reason="contains only the aggregate tables already reviewed")
    with db.transaction(egress.url) as s:
        assert s.execute(select(Review)).scalar_one().override_reason.startswith("contains")


def test_changes_requested_then_new_version_resets_reviews(egress):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    [(fid, *_)] = egress.files(rid)
    with pytest.raises(Invalid, match="comment"):
        egress.decide("sam", fid, Decision.request_changes)
    egress.decide("sam", fid, Decision.request_changes, comment="round to 5")
    egress.decide("sue", fid)
    assert egress.status(rid) == "changes_requested"
    ann = egress.person("ann")
    with db.transaction(egress.url) as s, pytest.raises(Invalid, match="replace these files"):
        submission.resubmit(s, ann, rid)
    with db.transaction(egress.url) as s, pytest.raises(Invalid, match="has not changed"):
        submission.replace_file(s, egress.settings, ann, fid)
    egress.write("table.csv", SAFE_CSV.replace("245", "245"))
    egress.write("table.csv", "region,count\nnorth,120\nsouth,245\neast,310\nwest,100\n")
    with db.transaction(egress.url) as s:
        new = submission.replace_file(s, egress.settings, ann, fid)
        new_id = new.id
    with db.transaction(egress.url) as s:
        submission.resubmit(s, ann, rid)
    files = egress.files(rid)
    assert [f[2] for f in files] == ["superseded", "pending"]
    egress.decide("sam", new_id)
    egress.decide("sue", new_id)
    assert egress.status(rid) == "released"
    with pytest.raises(PermissionDenied, match="not released"):
        downloads.fetch(egress.url, egress.state_dir, "ann", fid)
    _, data, *_ = downloads.fetch(egress.url, egress.state_dir, "ann", new_id)
    assert b"west,100" in data.read()


def test_reject_and_withdraw(egress):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    [(fid, *_)] = egress.files(rid)
    egress.decide("sam", fid, Decision.reject, comment="identifiable")
    egress.decide("sue", fid)
    assert egress.status(rid) == "rejected"
    with db.transaction(egress.url) as s, pytest.raises(Conflict, match="already rejected"):
        submission.withdraw(s, egress.person("ann"), rid)
    rid2 = egress.submit()
    with db.transaction(egress.url) as s, pytest.raises(PermissionDenied, match="only the researcher"):
        submission.withdraw(s, egress.person("bob"), rid2)
    with db.transaction(egress.url) as s:
        submission.withdraw(s, egress.person("ann"), rid2)
    assert egress.status(rid2) == "withdrawn"


def test_only_requester_downloads_and_tampered_store_is_refused(egress):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    [(fid, _, _, sha)] = egress.files(rid)
    with pytest.raises(PermissionDenied):
        downloads.fetch(egress.url, egress.state_dir, "ann", fid)  # not released yet
    egress.decide("sam", fid)
    egress.decide("sue", fid)
    for other in ("sam", "bob"):
        with pytest.raises(PermissionDenied, match="only the researcher"):
            downloads.fetch(egress.url, egress.state_dir, other, fid)
    blob = store.blob_path(egress.state_dir, sha)
    blob.chmod(0o644)
    blob.write_bytes(SAFE_CSV.replace("120", "2").encode())
    with pytest.raises(store.StoreTampered):
        downloads.fetch(egress.url, egress.state_dir, "ann", fid)
    assert _events(egress.url)[-1] == "egress.download_refused"
    assert _audit_ok(egress.url)


class Boom(Exception):
    pass


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_crash_before_commit_leaves_no_half_state(egress, monkeypatch):
    """An exception after the rows and audit events are written but before commit: nothing remains."""
    egress.write("table.csv", SAFE_CSV)
    ann = egress.person("ann")
    with pytest.raises(Boom):
        with db.transaction(egress.url) as s:
            submission.submit(s, egress.settings, ann, "cardio",
                              [submission.GroupSpec("g", "c", "k", ["table.csv"])])
            s.flush()
            raise Boom()
    with db.transaction(egress.url) as s:
        assert s.execute(select(func.count(ReleaseRequest.id))).scalar_one() == 0
        assert s.execute(select(func.count(RequestFile.id))).scalar_one() == 0
    assert _events(egress.url) == []

    rid = egress.submit()
    [(fid, *_)] = egress.files(rid)
    egress.decide("sam", fid)
    real_set_status = review.workflow.set_status

    def crash_after_write(session, request, new, actor, **detail):
        real_set_status(session, request, new, actor, **detail)  # status row + audit row written
        raise Boom("crash between the write and the commit")

    monkeypatch.setattr(review.workflow, "set_status", crash_after_write)
    with pytest.raises(Boom):
        egress.decide("sue", fid)
    monkeypatch.undo()
    assert egress.status(rid) == "under_review"
    with db.transaction(egress.url) as s:
        assert [r.steward for r in s.execute(select(Review)).scalars()] == ["sam"]
        assert s.get(RequestFile, fid).status.value == "pending"
    assert _events(egress.url)[-1] == "egress.review_started"
    assert _audit_ok(egress.url)
    egress.decide("sue", fid)  # the retry works
    assert egress.status(rid) == "released"


def test_oversize_request_and_file_are_refused(egress):
    egress.settings.egress.max_file_mib = 1
    egress.write("big.csv", b"a,b\n" + b"1,2\n" * (300 * 1024))
    with pytest.raises(Invalid, match="allowed per file"):
        egress.submit(paths=("big.csv",))
    egress.settings.egress.max_files_per_request = 1
    egress.write("a.csv", SAFE_CSV)
    egress.write("b.csv", SAFE_CSV)
    with pytest.raises(Invalid, match="more than the 1 allowed"):
        egress.submit(paths=("a.csv", "b.csv"))


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_two_stewards_deciding_at_the_same_moment_both_count(egress):
    """Without the request lock, each would compute the outcome without the other's decision."""
    import threading

    for round_ in range(3):
        egress.write("table.csv", SAFE_CSV + f"west,{100 + round_}\n")
        rid = egress.submit()
        [(fid, *_)] = egress.files(rid)
        barrier = threading.Barrier(2)
        errors = []

        def decide(name):
            barrier.wait()
            try:
                egress.decide(name, fid)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=decide, args=(n,)) for n in ("sam", "sue")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert egress.status(rid) == "released", f"round {round_}"
    assert _audit_ok(egress.url)


def test_cli_lists_requests_and_verifies_the_store(egress, cli):
    egress.write("table.csv", SAFE_CSV)
    rid = egress.submit()
    code, out, _ = cli("egress", "list", "--status", "submitted")
    assert code == 0 and f"{rid}" in out and "cardio" in out and "ann" in out
    assert cli("egress", "verify-store")[0] == 0
    [(_, _, _, sha)] = egress.files(rid)
    blob = store.blob_path(egress.state_dir, sha)
    blob.chmod(0o644)
    blob.write_bytes(b"changed")
    code, _, err = cli("egress", "verify-store")
    assert code == 1 and f"altered: {sha}" in err
    assert _events(egress.url)[-2:] == ["egress.store_verified", "egress.store_verified"]


def test_partial_release_lets_only_the_approved_file_out(egress):
    egress.write("table.csv", SAFE_CSV)
    egress.write("notes.csv", "region,count\nwest,130\n")
    rid = egress.submit(paths=("table.csv", "notes.csv"))
    files = {path: fid for fid, path, *_ in egress.files(rid)}
    for steward in ("sam", "sue"):
        egress.decide(steward, files["table.csv"])
        egress.decide(steward, files["notes.csv"], Decision.reject, comment="not needed for the paper")
    assert egress.status(rid) == "released"
    _, data, *_ = downloads.fetch(egress.url, egress.state_dir, "ann", files["table.csv"])
    assert data.read() == SAFE_CSV.encode()
    with pytest.raises(PermissionDenied):
        downloads.fetch(egress.url, egress.state_dir, "ann", files["notes.csv"])
