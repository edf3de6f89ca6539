"""The notebook image's report of a refusal: sent in the background, never raising, never waited for.

`images/notebook/enclave_policy/report.py` needs only tornado, so it runs here against a small
loopback HTTP server standing in for the hub (the real hub and container are in
tests/integration/test_download_refusals.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import socket
from pathlib import Path

import pytest
from tornado import web
from tornado.httpserver import HTTPServer

REPORT_PY = Path(__file__).resolve().parents[2] / "images/notebook/enclave_policy/report.py"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("enclave_policy_report_under_test", REPORT_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeHub:
    """POST /hub/api/enclave/refusals: records what arrives, answers only once `release` is set."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        hub = self

        class Handler(web.RequestHandler):
            async def post(self):
                hub.received.append((self.request.headers.get("Authorization", ""), json.loads(self.request.body)))
                hub.arrived.set()
                await hub.release.wait()
                self.set_status(201)

        self.server = HTTPServer(web.Application([(r"/hub/api/enclave/refusals", Handler)]))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hub/api"


def test_report_reaches_the_hub_with_the_servers_token_and_does_not_wait(report):
    async def scenario():
        hub = FakeHub()
        env = {"JUPYTERHUB_API_URL": hub.url + "/", "JUPYTERHUB_API_TOKEN": "server-token"}
        assert report.report_refusal("read_too_large", "big.parquet", 10_000_000, env=env) is None
        # report_refusal returned although the hub has not answered (it cannot: not released yet)
        await asyncio.wait_for(hub.arrived.wait(), 10)
        assert len(report._pending) == 1
        hub.release.set()
        await asyncio.wait_for(asyncio.gather(*report._pending), 10)
        hub.server.stop()
        return hub.received

    assert asyncio.run(scenario()) == [
        ("token server-token", {"kind": "read_too_large", "path": "big.parquet", "size": 10_000_000})
    ]


def test_no_hub_or_an_unreachable_hub_only_logs(report, caplog):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed_port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused

    async def scenario():
        report.report_refusal("files", "x.csv", env={})  # image run without a hub: nothing to do
        assert not report._pending
        env = {"JUPYTERHUB_API_URL": f"http://127.0.0.1:{closed_port}/hub/api", "JUPYTERHUB_API_TOKEN": "t"}
        report.report_refusal("nbconvert", "a.ipynb", fmt="html", env=env)
        await asyncio.wait_for(asyncio.gather(*report._pending), 15)

    with caplog.at_level(logging.WARNING, logger="enclave_policy"):
        asyncio.run(scenario())
    assert "could not report refused nbconvert a.ipynb to the hub" in caplog.text


def test_outside_an_event_loop_it_does_not_raise(report, caplog):
    with caplog.at_level(logging.WARNING, logger="enclave_policy"):
        report.report_refusal("files", "x.csv", env={"JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
                                                      "JUPYTERHUB_API_TOKEN": "t"})
    assert "could not report refused files x.csv" in caplog.text
