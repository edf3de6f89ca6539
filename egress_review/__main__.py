"""`python -m egress_review`: run the review service (normally started by JupyterHub, see service.py)."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlparse

import uvicorn

from enclave import db
from enclave import settings as settings_mod

from egress_review.app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s egress %(name)s] %(message)s")
    s = settings_mod.load()
    db.migrate(s.database_url)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/egress/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://{s.egress.bind}:{s.egress.port}"))
    app = create_app(s, prefix=prefix)
    uvicorn.run(app, host=url.hostname or s.egress.bind, port=url.port or s.egress.port,
                log_level="info", proxy_headers=True, forwarded_allow_ips="127.0.0.1")


if __name__ == "__main__":
    main()
