"""The RunningHub harness leaves nothing behind, even when the hub dies without cleaning up."""

from __future__ import annotations

import os
import signal

import psutil

from tests.support.hub import RunningHub


def _proxy(hub: RunningHub) -> psutil.Process:
    pid = int((hub.state_dir / "jupyterhub-proxy.pid").read_text().strip())
    proc = psutil.Process(pid)
    assert "configurable-http-proxy" in " ".join(proc.cmdline())
    return proc


def test_stop_ends_hub_and_proxy(enclave_env):
    with RunningHub(enclave_env) as hub:
        hub_proc, proxy = psutil.Process(hub.pid), _proxy(hub)
    assert not hub_proc.is_running() or hub_proc.status() == psutil.STATUS_ZOMBIE
    assert not proxy.is_running()


def test_proxy_is_ended_when_the_hub_was_killed(enclave_env):
    hub = RunningHub(enclave_env).start()
    proxy = _proxy(hub)
    os.kill(hub.pid, signal.SIGKILL)  # no chance for JupyterHub to stop its proxy
    hub.stop()
    psutil.wait_procs([proxy], timeout=5)
    assert not proxy.is_running()
