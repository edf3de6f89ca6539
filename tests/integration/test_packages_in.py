"""Packages and code coming in, with a real hub, a real notebook container, its kernels, the package
index on the project gateway and the review service.

What a researcher sees: `pip install` of an allowed package works in a kernel and survives a restart
of the server, a package off the list is refused with how to ask for it, `install.packages` does the
same for R, no other index answers, and code a steward approves appears in the workspace.
"""

from __future__ import annotations

import pytest

from enclave import bundles, db, packages

from tests.integration.test_egress_api import ServiceUser
from tests.support.channels import open_server
from tests.support.kernel import run_cell
from tests.support.wheels import survkit_bundle

PIP = r"""
import subprocess, sys
r = subprocess.run([sys.executable, "-m", "pip", "install", *sys.argv[1:]], capture_output=True, text=True)
print("rc", r.returncode)
print(r.stdout[-1500:], r.stderr[-1500:])
"""


PLANT_PTH = r"""
import site
line = 'import os, sys; open(f"/home/jovyan/work/pth-ran-{os.getpid()}", "w").write(" ".join(sys.argv))'
open(site.getusersitepackages() + "/plant.pth", "w").write(line + "\n")
"""


def pip(server, http, xsrf, *args) -> str:
    return run_cell(server, http, "python3", f"import sys; sys.argv = ['x', *{list(args)!r}]\n" + PIP, xsrf)


@pytest.fixture
def repository(enclave_env, tmp_path):
    with db.transaction(enclave_env.db_url) as s:
        bundles.import_bundle(s, enclave_env.state_dir, "cli:test", survkit_bundle(tmp_path))


def test_allowed_packages_install_persist_and_nothing_else_does(site, enclave_env, repository):
    ann = site.user("ann")
    alpha = site.project("a", members=[ann])
    with db.transaction(enclave_env.db_url) as s:
        packages.set_rule(s, "cli:test", "python", "survkit", allowed=True, project=alpha)
        packages.set_rule(s, "cli:test", "r", "rtiny", allowed=True, project=alpha)
        packages.set_rule(s, "cli:test", "python", "other", allowed=True, project="")  # the site's...
        packages.set_rule(s, "cli:test", "python", "other", allowed=False, project=alpha)  # ...not alpha's
    outside, outside_ip, _ = site.outside_server()
    with site.hub() as hub:
        http = site.login(hub, ann)
        box = site.start_server(hub, http, ann, alpha)
        server, xsrf = open_server(hub, http, ann, alpha)

        out = pip(server, http, xsrf, "survkit")
        assert "rc 0" in out and "Successfully installed survkit-0.30 tinydep-1.2" in out, out
        assert run_cell(server, http, "python3", "import survkit, tinydep; print('v', survkit.VERSION)", xsrf) == "v 0.30\n"

        out = pip(server, http, xsrf, "other")
        assert "rc 1" in out and "enclave: 'other' is not on the list of python packages allowed in project" in out, out
        # another index, the one "outside": unreachable (the firewall), whatever pip is told
        out = pip(server, http, xsrf, "--index-url", f"http://{outside_ip}:8000/simple/", "--timeout", "3",
                  "--retries", "0", "other")
        assert "rc 1" in out and "Successfully" not in out, out
        assert site.probe(box, outside_ip, 8000) != "open"

        r_out = run_cell(server, http, "ir", 'install.packages("rtiny"); library(rtiny); cat("r", rtiny_version(), "\\n")', xsrf)
        assert "r 1.0.2" in r_out, r_out
        r_out = run_cell(server, http, "ir", 'install.packages("data.table2")', xsrf)
        assert "enclave: 'data.table2' is not on the list of r packages allowed" in r_out, r_out

        # a .pth file in the user site runs in every Python that loads it: kernels, never the server
        run_cell(server, http, "python3", PLANT_PTH, xsrf)
        site.stop_server(hub, http, ann, alpha)
        box = site.start_server(hub, http, ann, alpha)
        server, xsrf = open_server(hub, http, ann, alpha)
        assert box.exec_run(["sh", "-c", "cat /home/jovyan/work/pth-ran-* 2>/dev/null"]).output == b""
        assert run_cell(server, http, "python3", "import survkit; print('v', survkit.VERSION)", xsrf) == "v 0.30\n"
        assert b"/runtime/kernel-" in box.exec_run(["sh", "-c", "cat /home/jovyan/work/pth-ran-*"]).output
        assert "r 1.0.2" in run_cell(server, http, "ir", 'library(rtiny); cat("r", rtiny_version(), "\\n")', xsrf)


def test_code_a_steward_approves_appears_in_the_workspace(site, enclave_env):
    ann, sam = site.user("ann"), site.user("sam", role="steward")
    alpha = site.project("a", members=[ann])
    code = b"def adults(df):\n    return df[df.age >= 18]\n"
    with site.hub() as hub:
        http = site.login(hub, ann)
        box = site.start_server(hub, http, ann, alpha)
        researcher, steward = ServiceUser(hub, ann, http), ServiceUser(hub, sam)
        r = researcher.post("/api/imports/code", data={"project": alpha, "why": "cohort helpers"},
                            files=[("files", ("cohort.py", code))])
        assert r.status_code == 201, r.text
        r2 = researcher.post("/api/imports/code", data={"project": alpha, "why": "the cohort"},
                             files=[("files", ("cohort.csv", b"id,age\n1,40\n"))])
        assert r2.status_code == 400 and "is not code" in r2.json()["message"]
        item = r.json()["groups"][0]["files"][0]
        assert steward.decide(item["id"]).status_code == 200
        assert steward.get(f"/api/requests/{r.json()['id']}").json()["status"] == "released"
        rc, out = box.exec_run(["cat", "/home/jovyan/work/imports/cohort.py"])
        assert rc == 0 and out == code
