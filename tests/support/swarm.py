"""A Docker Swarm of the test's own: each node a privileged container running Debian's dockerd
(tests/support/swarm_node/Dockerfile), on a network the test creates, with the daemon.json the test
gives it. The host talks to each node's engine through its socket, in a folder of the test's."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

HERE = Path(__file__).resolve().parent / "swarm_node"
SECCOMP = Path(__file__).resolve().parents[2] / "hub" / "spawn" / "seccomp.json"
NODE_SECCOMP = "/etc/docker/enclave-seccomp.json"
HARDENED = {"no-new-privileges": True, "seccomp-profile": NODE_SECCOMP}
TEST_SWARM = "org.enclave.test-swarm"  # label of a swarm a test made on this host




def _built(client: docker.DockerClient, name: str, folder: Path, dockerfile: str, **buildargs) -> str:
    """`name:<hash of the Dockerfile and its arguments>`, built when missing."""
    text = (folder / dockerfile).read_bytes() + repr(sorted(buildargs.items())).encode()
    tag = f"{name}:{hashlib.sha1(text).hexdigest()[:12]}"
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        client.images.get("enclave-base:bookworm")  # built by `make test` before any test (images/base)
        client.images.build(path=str(folder), dockerfile=dockerfile, tag=tag, pull=False, rm=True,
                            buildargs=buildargs or None)
    return tag


def node_image(client: docker.DockerClient) -> str:
    return _built(client, "enclave-swarm-node", HERE, "Dockerfile")


def gateway_image(client: docker.DockerClient) -> str:
    """[swarm] gateway_image as `enclave image ensure` builds it (the default name)."""
    from enclave.images import ensure_gateway_image
    from enclave.settings import Settings

    return ensure_gateway_image(Settings(), client=client)


def tools_image(client: docker.DockerClient) -> str:
    return _built(client, "enclave-swarm-tools", HERE, "tools.Dockerfile", GATEWAY_IMAGE=gateway_image(client))


@dataclass
class Node:
    name: str
    box: object  # the container
    client: docker.DockerClient
    ip: str
    url: str  # its engine's socket, for DOCKER_HOST


class SwarmLab:
    def __init__(self, client: docker.DockerClient, folder: Path):
        self.docker, self.folder = client, folder
        self.token = secrets.token_hex(3)
        self.image = node_image(client)
        self.net = client.networks.create(f"encsw{self.token}", driver="bridge")
        self.nodes: list[Node] = []
        self.boxes, self.volumes = [], []
        self.host_manager, self.had_gwbridge = "", True

    def node(self, name: str, daemon: dict, shared: dict[str, str] | None = None) -> Node:
        """Start one node whose daemon reads `daemon` as its daemon.json. `shared` maps folders of this
        host to "ro"/"rw": the node sees them at the same paths, as it would an NFS mount."""
        home = self.folder / name
        (home / "run").mkdir(parents=True)
        (home / "daemon.json").write_text(json.dumps(daemon))
        volume = self.docker.volumes.create(f"encsw{self.token}-{name}")
        self.volumes.append(volume)
        box = self.docker.containers.run(
            self.image, detach=True, name=f"encsw{self.token}-{name}", hostname=name, network=self.net.name,
            # as the molecule hosts: every capability this kernel grants (not SYS_RESOURCE), no seccomp
            # filter of the host's, the host's cgroups writable
            cap_add=["ALL"], cap_drop=["SYS_RESOURCE"], security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            cgroupns="host", tmpfs={"/run": "", "/run/lock": ""},
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                     str(home / "run"): {"bind": "/run/node", "mode": "rw"},
                     str(home / "daemon.json"): {"bind": "/etc/docker/daemon.json", "mode": "ro"},
                     str(SECCOMP): {"bind": NODE_SECCOMP, "mode": "ro"},
                     volume.name: {"bind": "/var/lib/docker", "mode": "rw"},
                     **{path: {"bind": path, "mode": mode} for path, mode in (shared or {}).items()}},
        )
        url = f"unix://{home / 'run' / 'docker.sock'}"
        self.boxes.append(box)
        client = docker.DockerClient(base_url=url, version="1.41", timeout=120)  # 1.41: Debian's 20.10
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping()
                break
            except Exception:  # noqa: BLE001 - not up yet
                box.reload()
                if box.status != "running" or time.monotonic() > deadline:
                    raise RuntimeError(f"node {name}'s dockerd did not start: {box.logs()[-2000:]!r}") from None
                time.sleep(0.3)
        box.reload()
        node = Node(name, box, client, box.attrs["NetworkSettings"]["Networks"][self.net.name]["IPAddress"], url)
        self.nodes.append(node)
        return node

    def init(self, manager: Node) -> None:
        manager.client.swarm.init(advertise_addr=manager.ip, listen_addr=f"{manager.ip}:2377")

    def init_host(self) -> str:
        """Make this host's engine the swarm's manager, as the hub's host is in production, on the
        test's network; returns its address there. The swarm is labelled as the test's, so a later
        run may clear one a crashed run left, and never touches anybody else's swarm."""
        if self.docker.info()["Swarm"]["LocalNodeState"] != "inactive":
            self.docker.swarm.reload()
            if (self.docker.swarm.attrs.get("Spec", {}).get("Labels") or {}).get(TEST_SWARM) != "yes":
                raise RuntimeError("this host's Docker is in a swarm that is not a test's: the swarm tests "
                                   "need a host in no swarm (docker swarm leave)")
            self.docker.swarm.leave(force=True)
        self.had_gwbridge = bool(self.docker.networks.list(names=["docker_gwbridge"]))
        self.net.reload()
        ip = self.net.attrs["IPAM"]["Config"][0]["Gateway"]
        self.docker.swarm.init(advertise_addr=ip, listen_addr=f"{ip}:2377")
        self.docker.swarm.reload()
        spec = dict(self.docker.swarm.attrs["Spec"], Labels={TEST_SWARM: "yes"})
        self.docker.api.update_swarm(version=self.docker.swarm.attrs["Version"]["Index"], swarm_spec=spec)
        self.host_manager = ip
        return ip

    def join(self, worker: Node, manager: Node | None = None) -> None:
        """Join `worker` to `manager`'s swarm (None: to this host's)."""
        engine, address = (manager.client, manager.ip) if manager else (self.docker, self.host_manager)
        engine.swarm.reload()
        token = engine.swarm.attrs["JoinTokens"]["Worker"]
        worker.client.swarm.join(remote_addrs=[f"{address}:2377"], join_token=token,
                                 advertise_addr=worker.ip, listen_addr=f"{worker.ip}:2377")

    def load(self, node: Node, image: str) -> None:
        """What an operator does without a registry: `docker save | docker load`."""
        saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", node.url, "load", "-q"], check=False, stdin=saved.stdout, capture_output=True,
                                text=True, timeout=600)
        saved.stdout.close()
        if saved.wait(timeout=60) != 0 or loaded.returncode != 0:
            raise RuntimeError(f"could not load {image} on {node.name}: {loaded.stderr[-1000:]}")

    def write(self, node: Node, path: str, text: str) -> None:
        """Put a file on a node (its host's file system), as an operator's tool would."""
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            info = tarfile.TarInfo(Path(path).name)
            info.size, info.mode = len(text.encode()), 0o644
            tar.addfile(info, io.BytesIO(text.encode()))
        node.box.exec_run(["mkdir", "-p", str(Path(path).parent)])
        node.box.put_archive(str(Path(path).parent), data.getvalue())

    def cleanup(self) -> None:
        for box in self.boxes:
            try:
                box.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for volume in self.volumes:
            volume.remove(force=True)
        if self.host_manager:
            self.docker.swarm.leave(force=True)
            if not self.had_gwbridge:
                for net in self.docker.networks.list(names=["docker_gwbridge"]):
                    net.remove()
        self.net.remove()

    def workers_for(self, env, image: str, names: tuple[str, ...] = ("w1", "w2")) -> list[Node]:
        """This host as the manager, and hardened workers sharing `env`'s data (read-only) and
        workspaces at the hub's paths, holding `image`, verified by the check (this host is not)."""
        from hub.swarm import nodes

        data, workspaces = Path(env.state_dir).parent / "data", Path(env.state_dir) / "workspaces"
        for folder in (data, workspaces):
            folder.mkdir(parents=True, mode=0o711, exist_ok=True)
        self.init_host()
        workers = []
        for name in names:
            node = self.node(name, {**HARDENED}, shared={str(data): "ro", str(workspaces): "rw"})
            self.join(node)
            self.load(node, image)
            workers.append(node)
        checks = nodes.verify_all(self.docker, image, env.settings.swarm.check_timeout_seconds)
        verified = sorted(c.hostname for c in checks if c.verified)
        if verified != sorted(names):
            raise RuntimeError(f"the check verified {verified}, not the workers {sorted(names)}: {checks}")
        return workers

