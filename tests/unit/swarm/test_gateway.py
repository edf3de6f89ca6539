"""The gateway's configuration: the hub's ports on every network, each server's port on the bridge only."""

from __future__ import annotations

import pytest

from hub.swarm import gateway


def test_server_ports_are_bound_on_the_bridge_address_and_the_hub_ports_everywhere():
    text = gateway.haproxy_config("10.231.0.2", "10.231.0.1", [8081, 8093],
                                  [gateway.Route("k2", "nb-two", 9002), gateway.Route("k1", "nb-one", 9001)])
    assert "    bind *:8081\n    server hub 10.231.0.1:8081" in text
    assert "    bind *:8093\n    server hub 10.231.0.1:8093" in text
    assert text.index("listen nb_k1") < text.index("listen nb_k2")
    assert "    bind 10.231.0.2:9001\n    server nb nb-one:8888 resolvers docker" in text
    binds = [line.split()[1] for line in text.splitlines() if line.strip().startswith("bind")]
    assert binds == ["*:8081", "*:8093", "10.231.0.2:9001", "10.231.0.2:9002"]


@pytest.mark.parametrize("bad", ["nb one", "nb\n    bind *:22", "x;y", ""])
def test_a_name_that_could_change_the_configuration_is_refused(bad):
    with pytest.raises(ValueError, match="unsafe"):
        gateway.haproxy_config("10.231.0.2", "10.231.0.1", [8081], [gateway.Route("k", bad, 9001)])


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
