"""Closing a project stops its servers and gives its Docker network back (real hub, real containers).

Docker carves every project network from finite address pools (its default holds about 30
networks), so a site that never removed the networks of finished projects would one day be unable
to start a new one.
"""

from __future__ import annotations

import time

import docker.errors
import pytest

from enclave import network

pytestmark = pytest.mark.integration


def _network(site, slug):
    try:
        return site.docker.networks.get(network.network_name(site.spawner["network_prefix"], slug))
    except docker.errors.NotFound:
        return None


def test_close_stops_servers_and_removes_the_project_network(site, cli):
    ann, bob = site.user("ann"), site.user("bob")
    closing, staying = site.project("a", members=[ann]), site.project("b", members=[bob])

    with site.hub(access_check_seconds=3600) as hub:
        site.start_server(hub, site.login(hub, ann), ann, closing)
        site.start_server(hub, site.login(hub, bob), bob, staying)
        assert _network(site, closing) is not None and _network(site, staying) is not None

        code, out, err = cli("project", "close", closing)
        assert code == 0, err
        assert f"stopped notebook server {ann.username}/{closing} (project_closed)" in out
        name = network.network_name(site.spawner["network_prefix"], closing)
        assert f"removed project network {name}" in out, out
        assert _network(site, closing) is None
        # the other project's network and server are untouched
        assert _network(site, staying) is not None
        assert site.container(bob, staying).status == "running"

        # a project that never ran (or whose network someone removed) has nothing to give back
        assert network.remove_project_network(site.docker, site.spawner["network_prefix"], closing) == (
            f"project network {name} was already gone")


def test_a_network_with_containers_attached_is_kept_and_said_so(site, enclave_env):
    """Hub down during close: its server was not stopped, so the network stays, with the command to run."""
    slug = site.project("c", members=[])
    name = network.network_name(site.spawner["network_prefix"], slug)
    net = site.docker.networks.create(name, **network.create_options(slug, site.spawner["bridge_prefix"]))
    site.extra_networks.append(net)
    box = site.docker.containers.run(site.image, ["sleep", "60"], detach=True, network=name,
                                     name=f"enct{site.token}-attached", labels={network.LABEL: slug})
    site.extra_containers.append(box)
    message = network.remove_project_network(site.docker, site.spawner["network_prefix"], slug)
    assert message.startswith(f"project network {name} kept: 1 container(s) still attached")
    assert f"docker network rm {name}" in message
    assert _network(site, slug) is not None
    box.remove(force=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _network(site, slug).attrs.get("Containers"):
        time.sleep(0.2)
    assert network.remove_project_network(site.docker, site.spawner["network_prefix"], slug) == f"removed project network {name}"
