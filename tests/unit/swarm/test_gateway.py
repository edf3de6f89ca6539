"""A server's gateway: the hub's ports toward the hub's host, the notebook port toward its server."""

from __future__ import annotations

import pytest

from hub.swarm import gateway


def test_the_gateway_passes_the_hubs_ports_to_the_hub_and_the_notebook_port_to_its_server():
    text = gateway.haproxy_config("10.231.0.1", [8081, 8093], "enclave-0a1b")
    assert "    bind *:8081\n    server hub 10.231.0.1:8081" in text
    assert "    bind *:8093\n    server hub 10.231.0.1:8093" in text
    assert "    bind *:8888\n    server nb enclave-0a1b:8888 resolvers docker" in text
    binds = [line.split()[1] for line in text.splitlines() if line.strip().startswith("bind")]
    assert binds == ["*:8081", "*:8093", "*:8888"]  # nothing else is passed on


@pytest.mark.parametrize("bad", ["nb one", "nb\n    bind *:22", "x;y", ""])
def test_a_name_that_could_change_the_configuration_is_refused(bad):
    with pytest.raises(ValueError, match="unsafe"):
        gateway.haproxy_config("10.231.0.1", [8081], bad)
    with pytest.raises(ValueError, match="unsafe"):
        gateway.haproxy_config(bad, [8081], "enclave-0a1b")


def test_a_gateway_is_locked_down_like_a_notebook_container():
    options = gateway.host_config("enclave-p1")
    assert options["read_only"] and options["cap_drop"] == ["ALL"]
    assert options["security_opt"] == ["no-new-privileges"] and options["network_mode"] == "enclave-p1"
    assert options["mem_limit"] == gateway.GATEWAY_MEMORY and options["pids_limit"] == 64


def test_a_server_network_is_internal_and_encrypted_when_asked():
    plain = gateway.server_network_options("k", encrypted=False)
    assert plain["driver"] == "overlay" and plain["internal"] is True and plain["options"] == {}
    assert gateway.server_network_options("k", encrypted=True)["options"] == {"encrypted": ""}


def test_overlay_encryption_is_offered_only_where_the_kernel_has_ipsec_esp(tmp_path):
    import gzip

    def config(text):
        path = tmp_path / "config.gz"
        with gzip.open(path, "wt") as f:
            f.write(text)
        return path

    assert gateway.overlay_encryption(config("CONFIG_XFRM=y\nCONFIG_INET_ESP=y\n"))[0] is True
    possible, said = gateway.overlay_encryption(config("CONFIG_XFRM=y\n# CONFIG_INET_ESP is not set\n"))
    assert possible is False and "NOT available" in said and "not encrypted" in said
    possible, said = gateway.overlay_encryption(tmp_path / "missing.gz")
    assert possible is False and "unknown" in said
