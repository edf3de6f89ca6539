# Single-user server policy of the enclave notebook image (/etc/jupyter, root-owned, read-only).
# JUPYTER_CONFIG_DIR points here too, so no user-writable folder can add a config that loosens it.
# Limits come from the environment the spawner sets: see enclave_policy/limits.py.
import ctypes

from enclave_policy.limits import PolicyLimits

# The server cannot be taken over by code in its own kernels (same uid, no Yama on these hosts): the
# enclave's seccomp profile refuses ptrace (hub/spawn/seccomp.py), and a non-dumpable process's /proc/<pid>/mem,
# environ and fds belong to root, so a kernel can neither read nor write them. Set here, in the server
# process, before any kernel exists; only the process itself (or an exec) can change it back.
PR_SET_DUMPABLE = 4
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
    raise SystemExit("enclave policy: could not make the notebook server non-dumpable")

c = get_config()  # noqa: F821 (provided by traitlets when this file is loaded)
limits = PolicyLimits.from_env()

# No download handlers: /files/, /view/ and nbconvert answer 403 with the release page.
c.ServerApp.authorizer_class = "enclave_policy.authorizer.NoDownloadAuthorizer"

# Contents API: no bulk reads or writes through the browser.
c.ServerApp.contents_manager_class = "enclave_policy.contents.SizeLimitedContentsManager"
c.SizeLimitedContentsManager.max_read_bytes = limits.max_read_bytes
c.SizeLimitedContentsManager.max_write_bytes = limits.max_write_bytes
c.ContentsManager.allow_hidden = False

# The file browser shows the workspace only; /data is read from notebooks, not browsed and fetched.
c.ServerApp.root_dir = "/home/jovyan/work"

# No call home, and no installing extensions from the browser (the venv is read-only anyway).
c.ServerApp.open_browser = False
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
