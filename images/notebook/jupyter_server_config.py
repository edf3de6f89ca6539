# Single-user server policy of the enclave notebook image (/etc/jupyter, root-owned, read-only).
# JUPYTER_CONFIG_DIR points here too, so no user-writable folder can add a config that loosens it.
# Limits come from the environment the spawner sets: see enclave_policy/limits.py.
from enclave_policy.limits import PolicyLimits

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
