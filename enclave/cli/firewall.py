"""`enclave firewall apply|remove|status`: the host rules that keep notebook containers off the host.

`enclave up` applies them (when [spawner] firewall is true); `remove` takes them all away and leaves
the host's firewall as it was before.
"""

from __future__ import annotations

from enclave.cli.context import load

from hub.spawn import firewall


def register(sub) -> None:
    p = sub.add_parser("firewall", help="host firewall rules for notebook containers")
    s = p.add_subparsers(dest="firewall_cmd", required=True)
    s.add_parser("apply", help="install or refresh the rules (idempotent)").set_defaults(func=_apply)
    s.add_parser("remove", help="remove every rule and chain the enclave added").set_defaults(func=_remove)
    s.add_parser("status", help="show the rules in place").set_defaults(func=_status)


def _fw(args) -> firewall.Firewall:
    return firewall.from_settings(load(args, migrate=False))


def _apply(args) -> int:
    fw = _fw(args)
    try:
        fw.apply()
    except firewall.FirewallError as exc:
        print(f"enclave: error: {exc}")
        return 2
    print(f"firewall applied: chains {fw.input_chain} and {fw.forward_chain} for bridges {fw.bridge_prefix}+ "
          f"(to the gateway: ports {', '.join(map(str, fw.ports))})")
    return 0


def _remove(args) -> int:
    fw = _fw(args)
    fw.remove()
    print(f"firewall removed: chains {fw.input_chain} and {fw.forward_chain} and their jumps are gone")
    return 0


def _status(args) -> int:
    fw = _fw(args)
    applied = fw.is_applied()
    print("applied" if applied else "NOT applied (run `enclave firewall apply`)")
    for name, rules in fw.status().items():
        print(f"# {name}")
        for rule in rules or ["(none)"]:
            print(f"  {rule}")
    return 0 if applied else 1
