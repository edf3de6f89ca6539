"""`python -m admin`: run the admin pages (started by JupyterHub as a managed service, hub/services/admin.py)."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlparse

import uvicorn

from enclave import db
from enclave import settings as settings_mod

from admin.app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s admin %(name)s] %(message)s")
    s = settings_mod.load()
    db.migrate(s.database_url)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/admin/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{s.admin.port}"))
    uvicorn.run(create_app(s, prefix=prefix), host=url.hostname or "127.0.0.1", port=url.port or s.admin.port,
                log_level="info", proxy_headers=True, forwarded_allow_ips="127.0.0.1")


if __name__ == "__main__":
    main()
