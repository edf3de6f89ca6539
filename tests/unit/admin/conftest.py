"""The admin pages driven through the real app with the test login gate (tests/support/egress_gate.py):
the review service's `egress` fixture gives people (ada is the admin), projects and a database."""

import pytest
from fastapi.testclient import TestClient

from admin.app import create_app
from tests.support.egress_gate import HeaderGate
from tests.unit.egress.conftest import egress  # noqa: F401 - re-exported fixture

P = "/services/admin"


def as_(name):
    return {"X-Egress-Test-User": name}


@pytest.fixture
def client(egress):  # noqa: F811
    return TestClient(create_app(egress.settings, gate=HeaderGate(P)), follow_redirects=False)
