"""Fixtures for the egress unit tests (real SQLite/PostgreSQL, real files, real checks).

- ``egress``: an enclave with project ``cardio`` (min cell count 10), researcher ``ann`` (member, with a
  workspace), researcher ``bob`` (member of ``other``), stewards ``sam`` and ``sue``, admin ``ada``.
  Namespace: settings, url, state_dir, ws (ann's cardio workspace), person(name), write(rel, data),
  submit(paths=..., as_=...) -> request id, decide(name, file_id, decision, ...).
"""

from __future__ import annotations

import types

import pytest

from enclave import db, projects

from tests.support.users import enrolled_user


@pytest.fixture
def egress(enclave_env, tmp_path):
    from egress_review import review, submission
    from egress_review.people import person_for
    from egress_review.workflow import Decision

    s = enclave_env.settings
    url = enclave_env.db_url
    for name, role in [("ann", "researcher"), ("bob", "researcher"), ("sam", "steward"),
                       ("sue", "steward"), ("ada", "admin")]:
        enrolled_user(s, name, role, password="correct horse battery staple")
    data = tmp_path / "data"
    data.mkdir()
    with db.transaction(url) as session:
        projects.create(session, "test", "cardio", str(data))
        projects.create(session, "test", "other", str(data))
        projects.add_member(session, "test", "cardio", "ann")
        projects.add_member(session, "test", "other", "bob")
    ws = s.state_dir / "workspaces" / "cardio" / "ann"
    ws.mkdir(parents=True)

    def person(name):
        with db.transaction(url) as session:
            return person_for(session, name)

    def write(rel, data):
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p

    def submit(paths=("table.csv",), as_="ann", project="cardio", context="counts by region",
               controls="cells under 10 suppressed"):
        with db.transaction(url) as session:
            req = submission.submit(session, s, person(as_), project,
                                    [submission.GroupSpec("main", context, controls, list(paths))])
            return req.id

    def decide(name, file_id, decision=Decision.approve, comment="", override_reason=""):
        with db.transaction(url) as session:
            review.decide(session, person(name), file_id, decision, comment, override_reason, settings=s)

    def files(request_id):
        with db.transaction(url) as session:
            req = submission.get_request(session, request_id)
            return [(f.id, f.path, f.status.value, f.sha256) for g in req.groups for f in g.files]

    def status(request_id):
        with db.transaction(url) as session:
            return submission.get_request(session, request_id).status.value

    return types.SimpleNamespace(settings=s, url=url, state_dir=s.state_dir, ws=ws, person=person,
                                 write=write, submit=submit, decide=decide, files=files, status=status)


SAFE_CSV = "region,count\nnorth,120\nsouth,245\neast,310\n"
