"""Fixtures around a real hub. Import them into a test module:

    from tests.support.fixtures import running_hub  # noqa: F401

- ``running_hub``: a started RunningHub on the test's ``enclave_env`` (stopped after the test; its log
  is printed at teardown, which pytest shows for failing tests). Extra settings by indirect parametrize:
  ``@pytest.mark.parametrize("running_hub", [{"auth": {"ip_max_failures": 3}}], indirect=True)``.
- ``started_hub(env, settings)``: the same as a context manager, for fixtures of a wider scope
  (one hub shared by a module's tests).
"""

from __future__ import annotations

import contextlib

import pytest

from tests.support.hub import RunningHub


@contextlib.contextmanager
def started_hub(env, settings: dict | None = None):
    """A started RunningHub on `env`; stopped at the end and its log printed (shown for failing tests)."""
    hub = RunningHub(env, settings=settings)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
        hub.dump_logs()


@pytest.fixture
def running_hub(request, enclave_env):
    with started_hub(enclave_env, getattr(request, "param", None)) as hub:
        yield hub
