"""The researcher notebook image, run the way the spawner runs it, checked from the outside.

One container of the real image (built first if missing, via enclave.images.ensure_notebook_image) on a
network this module creates: read-only root filesystem, tmpfs /tmp and /home/jovyan, the workspace
bind-mounted at /home/jovyan/work, /data read-only, every capability dropped. It runs `jupyter lab`
with a token instead of `jupyterhub-singleuser` (no hub here), which loads the same
/etc/jupyter/jupyter_server_config.py policy. The tests talk HTTP/websocket to its container IP.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from pathlib import Path

import pytest
import requests

from hub.spawn import seccomp
from tests.support.kernel import run_cell

# The first test may build the image from nothing (6-10 minutes on 2 cores): above the default timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
DISABLED_PLUGINS = [
    line.strip()
    for line in (REPO / "images/notebook/disabled_plugins.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


class Notebook:
    """A running notebook container and an authenticated HTTP client for it."""

    def __init__(self, container, url: str, token: str, workspace: Path):
        self.container, self.url, self.token, self.workspace = container, url, token, workspace
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url + path, timeout=60, **kw)

    def put(self, path: str, body: dict) -> requests.Response:
        return self.http.put(self.url + path, data=json.dumps(body), timeout=120)

    def exec(self, *cmd: str) -> tuple[int, str]:
        code, out = self.container.exec_run(list(cmd), demux=False)
        return code, out.decode(errors="replace")

    def put_file(self, name: str, data: bytes) -> None:
        """A file the researcher made in the workspace (written from the host, owned by jovyan)."""
        path = self.workspace / name
        path.write_bytes(data)
        import os

        os.chown(path, 1000, 1000)


@pytest.fixture(scope="module")
def notebook_image(tmp_path_factory):
    from enclave import images
    from enclave.settings import Settings

    state = tmp_path_factory.mktemp("image-state")
    return images.ensure_notebook_image(Settings({"enclave": {"state_dir": str(state)}}), log=print)


@pytest.fixture(scope="module")
def notebook(docker_client, notebook_image, tmp_path_factory):
    import os

    tag = uuid.uuid4().hex[:10]
    workspace = tmp_path_factory.mktemp("workspace")
    data = tmp_path_factory.mktemp("data")
    (data / "cohort.csv").write_text("age,sex\n34,F\n51,M\n")
    data.chmod(0o755)  # the project's data: readable by the researcher, writable by nobody in the container
    os.chown(workspace, 1000, 1000)
    network = docker_client.networks.create(f"enclave-nbtest-{tag}", driver="bridge", internal=True)
    token = secrets.token_hex(24)
    container = docker_client.containers.run(
        notebook_image,
        ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", f"--IdentityProvider.token={token}"],
        name=f"enclave-nbtest-{tag}",
        detach=True,
        network=network.name,
        read_only=True,
        tmpfs={
            "/tmp": "rw,nosuid,nodev,size=512m",
            "/home/jovyan": "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0755",
        },
        volumes={
            str(workspace): {"bind": "/home/jovyan/work", "mode": "rw"},
            str(data): {"bind": "/data", "mode": "ro"},
        },
        cap_drop=["ALL"],
        security_opt=["no-new-privileges", seccomp.security_opt()],
        pids_limit=256,
        mem_limit="2g",
    )
    try:
        container.reload()
        ip = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        url = f"http://{ip}:8888"
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/api/status", headers={"Authorization": f"token {token}"}, timeout=3).ok:
                    break
            except requests.RequestException:
                pass
            container.reload()
            if container.status != "running" or time.monotonic() > deadline:
                pytest.fail(f"notebook server did not come up ({container.status}):\n{container.logs().decode()[-4000:]}")
            time.sleep(1)
        yield Notebook(container, url, token, workspace)
    finally:
        print("--- notebook container log ---\n" + container.logs().decode(errors="replace")[-6000:])
        container.remove(force=True)
        network.remove()


# --- what is in the image -------------------------------------------------------------------------


def test_researcher_is_not_root_and_root_filesystem_is_read_only(notebook):
    code, out = notebook.exec("id", "-u")
    assert (code, out.strip()) == (0, "1000")
    code, out = notebook.exec("sh", "-c", "touch /opt/venv/evil 2>&1; echo $?")
    assert out.strip().endswith("1") and "Read-only file system" in out
    code, out = notebook.exec("sh", "-c", "touch /data/evil 2>&1; echo $?")
    assert out.strip().endswith("1") and "Read-only file system" in out
    code, out = notebook.exec("sh", "-c", "echo ok > /home/jovyan/work/probe && cat /home/jovyan/work/probe")
    assert out.strip() == "ok"


def test_data_stack_imports_and_matches_the_hub(notebook):
    import jupyterhub

    code, out = notebook.exec(
        "python", "-c",
        "import numpy, pandas, pyarrow, scipy, statsmodels, sklearn, matplotlib, seaborn, acro, "
        "ipykernel, jupyterlab, jupyterhub; print(pandas.__version__, jupyterhub.__version__, "
        "jupyterlab.__version__)",
    )
    assert code == 0, out
    pandas_version, hub_version, lab_version = out.split()[-3:]
    assert hub_version == jupyterhub.__version__
    assert tuple(int(x) for x in pandas_version.split(".")[:3]) <= (2, 3, 3)
    assert lab_version.startswith("4.")
    code, out = notebook.exec("jupyterhub-singleuser", "--help")
    assert code == 0 and "--" in out


def test_server_start_builds_no_iri_parsers(notebook):
    """rfc3987-syntax would compile Lark parsers on every server start (~1 s of CPU): it is not in the image."""
    code, out = notebook.exec(
        "python", "-c",
        "import sys, jupyterhub.singleuser, jupyter_server.serverapp, jupyterlab, jsonschema; "
        "print(sorted(m for m in ('lark', 'rfc3987_syntax') if m in sys.modules) or 'none')",
    )
    assert (code, out.strip().splitlines()[-1]) == (0, "none"), out


def test_jupyterhub_singleuser_loads_the_same_policy(docker_client, notebook_image):
    """The entry point the spawner runs reads /etc/jupyter too, with the limits from its environment."""
    hub_env = {
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/ann/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",  # no hub: its own loopback, refused
        "JUPYTERHUB_API_TOKEN": secrets.token_hex(16),
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-ann",
        "JUPYTERHUB_USER": "ann",
        "ENCLAVE_MAX_READ_BYTES": str(3 * MIB),
        "ENCLAVE_MAX_WRITE_BYTES": str(MIB // 2),
    }
    container = docker_client.containers.run(
        notebook_image, name=f"enclave-nbtest-su-{uuid.uuid4().hex[:10]}", detach=True,
        network_mode="none", read_only=True, tmpfs={"/tmp": "rw,size=64m"}, cap_drop=["ALL"],
        security_opt=["no-new-privileges", seccomp.security_opt()], environment=hub_env,
    )
    try:
        deadline = time.monotonic() + 90
        logs = ""
        while time.monotonic() < deadline and not ("policy: /files/" in logs and "policy: contents" in logs):
            time.sleep(2)
            logs = container.logs().decode(errors="replace")
        assert "jupyterhub | extension was successfully linked" in logs, logs[-3000:]
        assert "enclave policy: contents API reads up to 3 MiB, writes up to 512 KiB per file" in logs, logs[-3000:]
        assert "enclave policy: /files/, /view/ and nbconvert refused; releases at /services/egress/" in logs
    finally:
        container.remove(force=True)


def test_kernelspecs_offer_python_and_r(notebook):
    specs = notebook.get("/api/kernelspecs").json()["kernelspecs"]
    assert {"python3", "ir"} <= set(specs)


def _execute(notebook: Notebook, kernel: str, code: str) -> str:
    return run_cell(notebook.url, notebook.http, kernel, code)


def test_python_kernel_executes_a_cell(notebook):
    code = (
        "import pandas as pd, acro\n"
        "df = pd.read_csv('/data/cohort.csv')\n"
        "print('mean age', df.age.mean())"
    )
    assert "mean age 42.5" in _execute(notebook, "python3", code)


def test_r_kernel_executes_a_cell(notebook):
    code = "suppressMessages(library(data.table)); d <- fread('/data/cohort.csv'); cat('rows', nrow(d), sum(1:10))"
    assert "rows 2 55" in _execute(notebook, "ir", code)


# --- the policy -----------------------------------------------------------------------------------


def _notebook_json(source: str = "print('hello')") -> dict:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }


@pytest.mark.parametrize(
    "path",
    ["/files/results.csv", "/files/results.csv?download=1", "/view/results.csv",
     "/nbconvert/html/analysis.ipynb?download=true", "/nbconvert/script/analysis.ipynb"],
    ids=["files", "files-download", "view", "nbconvert-download", "nbconvert-script"],
)
def test_download_handlers_answer_403_pointing_to_release_page(notebook, path):
    notebook.put_file("results.csv", b"a,b\n1,2\n")
    notebook.put_file("analysis.ipynb", json.dumps(_notebook_json()).encode())
    r = notebook.get(path, allow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert "/services/egress/" in r.text
    assert "a,b" not in r.text


def test_contents_api_refuses_a_10_mib_read_but_gives_metadata(notebook):
    notebook.put_file("big.bin", b"\0" * (10 * MIB))
    r = notebook.get("/api/contents/big.bin")
    assert r.status_code == 413
    assert "big.bin is 10 MiB" in r.json()["message"]
    r = notebook.get("/api/contents/big.bin", params={"content": "0"})
    assert r.status_code == 200 and r.json()["size"] == 10 * MIB
    listing = notebook.get("/api/contents/").json()
    assert "big.bin" in {entry["name"] for entry in listing["content"]}


def test_contents_api_refuses_a_10_mib_write_and_writes_nothing(notebook):
    payload = base64.b64encode(b"x" * (10 * MIB)).decode()
    r = notebook.put("/api/contents/upload.bin", {"type": "file", "format": "base64", "content": payload})
    assert r.status_code == 413
    assert "accepts files up to 1 MiB" in r.json()["message"]
    assert not (notebook.workspace / "upload.bin").exists()


def test_chunked_upload_is_refused_once_it_passes_the_limit(notebook):
    chunk = base64.b64encode(b"y" * (MIB // 2 + 1)).decode()
    body = {"type": "file", "format": "base64", "content": chunk, "name": "chunked.bin", "path": "chunked.bin"}
    assert notebook.put("/api/contents/chunked.bin", {**body, "chunk": 1}).status_code in (200, 201)
    r = notebook.put("/api/contents/chunked.bin", {**body, "chunk": 2})
    assert r.status_code == 413, r.text


def test_normal_notebook_saves_and_opens(notebook):
    nb = _notebook_json("import pandas as pd\npd.read_csv('/data/cohort.csv').describe()")
    r = notebook.put("/api/contents/work.ipynb", {"type": "notebook", "format": "json", "content": nb})
    assert r.status_code in (200, 201), r.text
    opened = notebook.get("/api/contents/work.ipynb").json()
    assert opened["type"] == "notebook"
    assert opened["content"]["cells"][0]["source"].startswith("import pandas")


def _page_config(notebook: Notebook) -> dict:
    html = notebook.get("/lab").text
    match = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, html[:500]
    return json.loads(match.group(1))


def test_download_export_share_and_open_url_plugins_are_disabled_and_locked(notebook):
    config = _page_config(notebook)
    assert set(DISABLED_PLUGINS) <= set(config["disabledExtensions"])
    locked = config.get("lockedExtensions", {})
    locked = set(locked) if isinstance(locked, (list, dict)) else set()
    assert set(DISABLED_PLUGINS) <= locked, locked
    assert "@jupyterlab/filebrowser-extension:open-url" in config["disabledExtensions"]


def test_file_browser_hides_uploads_and_lab_links_to_release_page(notebook):
    browser = notebook.get("/lab/api/settings/@jupyterlab/filebrowser-extension:browser").json()
    assert browser["schema"]["properties"]["allowFileUploads"]["default"] is False
    menus = notebook.get("/lab/api/settings/@jupyterlab/mainmenu-extension:plugin").json()
    default_menus = menus["schema"]["properties"]["menus"]["default"]
    release = [m for m in default_menus if m.get("id") == "jp-mainmenu-enclave-release"]
    assert release and release[0]["items"][0]["args"]["url"] == "/services/egress/"


# --- the operator's commands ----------------------------------------------------------------------


def test_image_status_shows_the_current_image(cli, notebook_image, docker_client):
    code, out, err = cli("image", "status")
    assert code == 0, err
    assert f"{notebook_image}: {docker_client.images.get(notebook_image).id}" in out
    assert "current" in out and "wheelhouse:" in out


def test_image_ensure_does_nothing_when_current(cli, notebook_image, docker_client):
    before = docker_client.images.get(notebook_image).id
    code, out, err = cli("image", "ensure")
    assert (code, out.strip()) == (0, notebook_image), err
    assert docker_client.images.get(notebook_image).id == before
    assert "building" not in out


def test_build_with_a_missing_base_image_is_refused_without_pulling(cli, enclave_env, docker_client):
    missing = f"enclave-test-no-such-base:{uuid.uuid4().hex[:8]}"
    enclave_env.config.write_text(enclave_env.config.read_text() + f'\n[images]\nbase_image = "{missing}"\nnotebook = "enclave-test-never-built:x"\n')
    code, out, err = cli("image", "build", "--quiet")
    assert code == 2
    assert f"base image {missing} is not on this host" in err
    import docker

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get("enclave-test-never-built:x")
