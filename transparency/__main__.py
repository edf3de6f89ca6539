"""`python -m transparency`: serve the public register (started by JupyterHub as a managed service,
hub/services/transparency.py, and published by its proxy at /services/transparency/)."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from enclave import db
from enclave import settings as settings_mod

from transparency.web import make_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s transparency] %(message)s")
    s = settings_mod.load()
    db.migrate(s.database_url)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/transparency/")
    logging.getLogger("transparency").info("the register of %s at %s on 127.0.0.1:%d", s.state_dir, prefix, s.transparency.port)
    web.run_app(make_app(s, prefix), host="127.0.0.1", port=s.transparency.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
