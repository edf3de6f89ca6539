"""The project's pseudonym key cannot be read from inside the project's notebook container.

The container is started with the mounts and settings the spawner computes (hub.spawn.hardening.Policy:
data folder read-only at /data, the workspace at /home/jovyan/work, read-only root, tmpfs, no
capabilities), from enclave-base:bookworm. Its whole view of /data and the workspace is then searched
for the key (raw bytes and hex), and the key's host path must not exist inside.
"""

import io
import shutil
import tarfile
import uuid

import pyarrow as pa
import pytest

from enclave import paths

from hub.spawn.hardening import Policy, tmpfs_options
from ingest import keys, optout

pytestmark = pytest.mark.integration
IMAGE = "enclave-base:bookworm"


def _tree_bytes(container, path: str) -> dict[str, bytes]:
    """Every regular file under `path` as the container sees it (read through the Docker API)."""
    stream, _ = container.get_archive(path)
    buf = io.BytesIO(b"".join(stream))
    out = {}
    with tarfile.open(fileobj=buf) as tar:
        for m in tar.getmembers():
            if m.isfile():
                out[m.name] = tar.extractfile(m).read()
    return out


def test_key_is_not_visible_in_a_project_container(cli, enclave_env, tmp_path, docker_client):
    docker_client.images.get(IMAGE)  # fails the test if the base image is not built
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    assert cli("project", "create", "cardio", "--data", str(data))[0] == 0
    src = tmp_path / "stays.csv"
    src.write_text("nir,age\n" + "".join(f"18500{i:05d},{40 + i % 30}\n" for i in range(300)))
    code, _, err = cli("data", "import", "cardio", str(src), "--id-columns", "nir")
    assert code == 0, err
    key = keys.read(enclave_env.state_dir, "cardio")
    key_file = keys.key_path(enclave_env.state_dir, "cardio")
    assert key is not None and key_file.exists()
    # an objection, applied: the opt-out register and its key stay on the host too
    objections = tmp_path / "objections.csv"
    objections.write_text("nir\n1850000007\n")
    assert cli("optout", "add", "--id-column", "nir", str(objections))[0] == 0
    assert cli("optout", "apply")[0] == 0
    optout_key_file = enclave_env.state_dir / "secrets" / optout.KEY_FILE
    optout_key = optout_key_file.read_bytes()
    digest = optout.digests(pa.array(["1850000007"]), optout_key)[0].as_py()

    workspace = paths.workspace(enclave_env.state_dir, "cardio", "ann")
    workspace.mkdir(parents=True)
    shutil.copy(data / "stays.parquet", workspace / "copy.parquet")
    (workspace / "notes.txt").write_text("analysis notes\n")
    shutil.chown(workspace, 1000, 100)
    workspace.chmod(0o700)

    policy = Policy(
        data_dir=str(data.resolve()), workspace=str(workspace.resolve()), network="none",
        mem_limit=256 * 2**20, nano_cpus=500_000_000, pids_limit=64,
        tmpfs={p: tmpfs_options(p, "16m") for p in ("/tmp", "/home/jovyan")},
    )
    host_config = policy.host_config()
    host_config.pop("sysctls")  # a net sysctl needs a network namespace with IPv6; not what is tested here
    host_config["auto_remove"] = False
    api = docker_client.api
    name = f"enclave-test-ingest-{uuid.uuid4().hex[:10]}"
    cid = api.create_container(IMAGE, ["sleep", "300"], name=name, user=policy.user,
                               host_config=api.create_host_config(**host_config))["Id"]
    try:
        api.start(cid)
        container = docker_client.containers.get(cid)

        def sh(cmd: str) -> tuple[int, str]:
            res = container.exec_run(["sh", "-c", cmd], user=policy.user)
            return res.exit_code, res.output.decode(errors="replace")

        # the researcher does see the data and the workspace (so the search below means something)
        code, out = sh("wc -c < /data/stays.parquet; cat /home/jovyan/work/notes.txt; id -u")
        assert code == 0, out
        assert out.split()[0] == str((data / "stays.parquet").stat().st_size) and "analysis notes" in out
        assert out.split()[-1] == "1000"
        # no file under /data or the workspace holds the key, as raw bytes or as hex
        seen = _tree_bytes(container, "/data") | _tree_bytes(container, "/home/jovyan/work")
        assert any(n.endswith("stays.parquet") for n in seen) and any(n.endswith("notes.txt") for n in seen)
        for fname, content in seen.items():
            for secret in (key, optout_key, digest):
                assert secret not in content, fname
                assert secret.hex().encode() not in content.lower(), fname
        code, out = sh(f"grep -rilF {key.hex()} /data /home/jovyan/work; echo rc=$?")
        assert out.strip().endswith("rc=1"), out  # grep found nothing
        # the key's host path, its folder and any *.key file do not exist inside the container
        code, out = sh(f"test -e {key_file} && echo present; test -e {key_file.parent} && echo dir-present; "
                       f"test -e {optout_key_file} && echo optout-present; "
                       "find / -xdev \\( -name 'cardio.key' -o -name 'optout.key' -o -name '*.sqlite' \\) 2>/dev/null; echo done")
        assert out.strip() == "done", out
        # and the data folder cannot be written to
        code, out = sh("touch /data/x 2>&1; echo rc=$?")
        assert "rc=0" not in out
    finally:
        api.remove_container(cid, force=True)
