"""Fixtures around a real hub. Import them into a test module:

    from tests.support.fixtures import running_hub  # noqa: F401

- ``running_hub``: a started RunningHub on the test's ``enclave_env`` (stopped after the test; its log
  is printed at teardown, which pytest shows for failing tests). Extra settings by indirect parametrize:
  ``@pytest.mark.parametrize("running_hub", [{"auth": {"ip_max_failures": 3}}], indirect=True)``.
"""

from __future__ import annotations

import pytest

from tests.support.hub import RunningHub


@pytest.fixture
def running_hub(request, enclave_env):
    hub = RunningHub(enclave_env, settings=getattr(request, "param", None))
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
        hub.dump_logs()
