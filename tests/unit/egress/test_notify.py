"""E-mail notifications through a real SMTP server on loopback: who is told what, immediate or in a daily
digest, nothing of the data in any message, retries when the relay fails, nothing kept when mail is off."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from enclave import db, mailer, notify
from enclave.errors import Invalid
from enclave.models import Notification

from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.usefixtures("egress")


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def _set(egress, name, email, choice="immediate"):
    with db.transaction(egress.url) as s:
        notify.set_preferences(s, "cli:test", name, email=email, notify=choice)


def _send(egress, smtp, now=None, digest_hour=7):
    egress.settings.mail.smtp_host, egress.settings.mail.smtp_port = "127.0.0.1", smtp.port
    egress.settings.mail.security = "none"
    transport = mailer.smtp_transport(egress.settings.mail, egress.state_dir / "secrets")
    with db.transaction(egress.url) as s:
        return notify.send_due(s, transport, now or dt.datetime.utcnow(), digest_hour, "http://127.0.0.1:8000")


def test_stewards_hear_of_a_submission_and_the_researcher_of_the_release(egress, smtp):
    for name in ("ann", "sam", "sue", "ada", "bob"):
        _set(egress, name, f"{name}@localhost")
    egress.write("secret_cohort_name.csv", "region,count\nnorth,120\nsouth,245\n")
    rid = egress.submit(paths=("secret_cohort_name.csv",))
    assert _send(egress, smtp) == (2, 0)
    assert sorted(m["To"] for m in smtp.inbox.messages) == ["sam@localhost", "sue@localhost"]  # not ada, bob, ann
    msg = smtp.inbox.messages[0]
    body = msg.get_payload()
    assert msg["Subject"] == f"Request {rid} waits for review"
    assert f"http://127.0.0.1:8000/services/egress/requests/{rid}" in body
    assert "secret_cohort_name" not in body and "north" not in body and "120" not in body
    [(fid, *_)] = egress.files(rid)
    egress.decide("sam", fid)
    egress.decide("sue", fid)
    assert _send(egress, smtp) == (1, 0)
    released = smtp.inbox.to("ann@localhost")
    assert [m["Subject"] for m in released] == [f"Request {rid} released"]
    assert _send(egress, smtp) == (0, 0)  # each message once


def test_a_digest_gathers_the_day_into_one_message(egress, smtp):
    _set(egress, "sam", "sam@localhost", "digest")
    egress.write("t.csv", "region,count\nnorth,120\nsouth,245\n")
    egress.write("u.csv", "region,count\nnorth,130\nsouth,255\n")
    egress.submit(paths=("t.csv",))
    egress.submit(paths=("u.csv",))
    queued_at = dt.datetime.utcnow()
    digest_at = (queued_at + dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    assert _send(egress, smtp, queued_at + dt.timedelta(minutes=5), digest_at.hour) == (0, 0)  # not yet
    assert _send(egress, smtp, digest_at + dt.timedelta(minutes=1), digest_at.hour) == (1, 0)
    [msg] = smtp.inbox.to("sam@localhost")
    assert msg["Subject"] == "Research enclave: 2 notification(s) of the day"
    assert msg.get_payload().count("waits for review") == 2


def test_a_relay_that_fails_keeps_the_message_for_a_retry(egress, smtp):
    _set(egress, "sam", "sam@localhost")
    egress.write("t.csv", "region,count\nnorth,120\nsouth,245\n")
    egress.submit(paths=("t.csv",))

    def down(msg):
        raise ConnectionRefusedError("relay down")

    with db.transaction(egress.url) as s:
        assert notify.send_due(s, down, dt.datetime.utcnow(), 7, "https://e") == (0, 1)
    with db.transaction(egress.url) as s:
        [n] = s.execute(select(Notification)).scalars()
        assert n.attempts == 1 and "relay down" in n.last_error and n.sent_at is None
    assert _send(egress, smtp) == (1, 0)


def test_mail_off_keeps_nothing(egress):
    from hub.services import notifier

    _set(egress, "sam", "sam@localhost")
    egress.write("t.csv", "region,count\nnorth,120\nsouth,245\n")
    egress.submit(paths=("t.csv",))
    assert notifier.one_pass(egress.settings, None) == (0, 0)
    with db.transaction(egress.url) as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0


@pytest.mark.parametrize("address", ["sam", "sam@", "a b@localhost", "sam@localhost\r\nBcc: x@localhost",
                                     "sam@localhost, eve@localhost", "sam@@localhost", "sam@local..host"])
def test_addresses_that_could_add_a_recipient_or_a_header_are_refused(egress, address):
    with pytest.raises(Invalid):
        _set(egress, "sam", address)


def test_people_choose_immediate_or_digest_on_the_review_pages(egress):
    from fastapi.testclient import TestClient

    from egress_review.app import create_app
    from tests.support.egress_gate import HeaderGate

    _set(egress, "ann", "ann@localhost")
    client = TestClient(create_app(egress.settings, gate=HeaderGate()))
    me = {"X-Egress-Test-User": "ann"}
    assert "ann@localhost" in client.get("/services/egress/", headers=me).text
    r = client.post("/services/egress/me/notifications", headers=me, data={"notify": "digest"}, follow_redirects=False)
    assert r.status_code == 303
    with db.transaction(egress.url) as s:
        from enclave import accounts
        assert accounts.get(s, "ann").notify == "digest"
    r = client.post("/services/egress/me/notifications", headers=me, data={"notify": "hourly"})
    assert r.status_code == 400


def test_cli_sets_the_address(cli, egress):
    code, out, _ = cli("user", "notify", "sam", "--email", "sam@localhost", "--digest")
    assert code == 0 and "mail to sam@localhost, digest" in out
    assert "sam@localhost (digest)" in cli("user", "list")[1]
    code, _, err = cli("user", "add", "zoe", "--role", "steward", "--email", "not an address")
    assert code == 2 and "is not an e-mail address" in err
    code, _, err = cli("user", "notify", "sam")
    assert code == 2 and "say what to change" in err
