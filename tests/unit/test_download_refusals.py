"""What a notebook server's refusal report may say, and how many a user gets recorded per window.

The endpoint itself (tokens, a real container reporting, the audit log) is tested against a real hub
in tests/integration/test_download_refusals.py; here are the pure parts: body validation and the
rate limit, with a hand-moved clock.
"""

from __future__ import annotations

import json

import pytest

from enclave.errors import Invalid

from hub.services import refusal_reports as dr


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize("fields, expected", [
    pytest.param({"kind": "files", "path": "results/table.csv"}, {"kind": "files", "path": "results/table.csv"},
                 id="files"),
    pytest.param({"kind": "read_too_large", "path": "big.parquet", "size": 10_485_760},
                 {"kind": "read_too_large", "path": "big.parquet", "size": 10_485_760}, id="with-size"),
    pytest.param({"kind": "nbconvert", "path": "a.ipynb", "format": "html"},
                 {"kind": "nbconvert", "path": "a.ipynb", "format": "html"}, id="nbconvert-format"),
    pytest.param({"kind": "view", "path": "x.html", "user": "mallory", "project": "other", "actor": "root"},
                 {"kind": "view", "path": "x.html"}, id="identity-fields-ignored"),
])
def test_a_valid_report_keeps_only_what_was_refused(fields, expected):
    assert dr.parse_report(body(**fields)).detail() == expected


@pytest.mark.parametrize("raw, reason", [
    pytest.param(b"not json", "not_json", id="not-json"),
    pytest.param(b"\xff\xfe", "not_json", id="not-utf8"),
    pytest.param(b'["files", "x"]', "not_json", id="not-an-object"),
    pytest.param(b"", "not_json", id="empty"),
    pytest.param(body(kind="shell", path="x"), "bad_kind", id="unknown-kind"),
    pytest.param(body(path="x"), "bad_kind", id="no-kind"),
    pytest.param(body(kind="files"), "bad_path", id="no-path"),
    pytest.param(body(kind="files", path=""), "bad_path", id="empty-path"),
    pytest.param(body(kind="files", path=7), "bad_path", id="path-not-text"),
    pytest.param(body(kind="files", path="a" * (dr.MAX_PATH_CHARS + 1)), "bad_path", id="path-too-long"),
    pytest.param(body(kind="files", path="a\nforged line"), "bad_path", id="control-chars"),
    pytest.param(body(kind="read_too_large", path="x", size=-1), "bad_size", id="negative-size"),
    pytest.param(body(kind="read_too_large", path="x", size="9"), "bad_size", id="size-not-number"),
    pytest.param(body(kind="read_too_large", path="x", size=True), "bad_size", id="size-bool"),
    pytest.param(body(kind="read_too_large", path="x", size=1.5), "bad_size", id="size-float"),
    pytest.param(body(kind="nbconvert", path="x", format="../../etc"), "bad_format", id="bad-format"),
    pytest.param(b"{" + b" " * dr.MAX_BODY_BYTES + b"}", "too_large", id="body-too-large"),
])
def test_a_malformed_report_is_refused_with_a_reason(raw, reason):
    with pytest.raises(Invalid) as err:
        dr.parse_report(raw)
    assert err.value.reason == reason and err.value.message


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_user_gets_n_events_per_window_then_one_summary_then_nothing():
    clock = Clock()
    limiter = dr.RefusalLimiter(per_window=3, window_seconds=60, clock=clock)
    decisions = [limiter.admit("ann") for _ in range(6)]
    assert [d.record for d in decisions] == [True, True, True, False, False, False]
    assert [d.summary for d in decisions] == [False, False, False, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]

    # another user is counted apart
    assert limiter.admit("bob").record

    # the next window records again, and its first event says how many had no event of their own
    clock.now += 60
    fresh = limiter.admit("ann")
    assert fresh.record and fresh.dropped_before == 3
    assert limiter.admit("ann").dropped_before == 0


def test_the_window_starts_at_the_first_report_not_on_the_clock_minute():
    clock = Clock()
    limiter = dr.RefusalLimiter(per_window=1, window_seconds=60, clock=clock)
    assert limiter.admit("ann").record
    clock.now += 59.9
    late = limiter.admit("ann")
    assert not late.record and late.summary and 0 < late.resets_in <= 0.2
    clock.now += 0.1
    assert limiter.admit("ann").record
