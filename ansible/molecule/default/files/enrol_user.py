"""Finish a researcher's enrolment on the target with the enclave's own Python API (the same calls
the enrolment page makes), and print the password and TOTP secret as JSON for the controller-side
login test. Test data only: run by verify.yml with the enclave venv's python.

usage: enrol_user.py ENROLMENT_URL
"""

import json
import secrets
import sys
import time

import pyotp

from enclave import db
from enclave import settings as settings_mod

from hub.auth import enrolment

token = sys.argv[1].rstrip("/").rsplit("/", 1)[-1]
s = settings_mod.load()
with db.transaction(s.database_url) as session:
    view = enrolment.start(session, s, token)
password = "Molecule-" + secrets.token_urlsafe(12)
# The previous step's code, so the current one is still unused for the login that follows.
code = pyotp.TOTP(view.secret).at(time.time() - 30)
with db.transaction(s.database_url) as session:
    enrolment.complete(session, s, token, password=password, password_confirm=password, otp=code)
print(json.dumps({"username": view.username, "password": password, "totp_secret": view.secret}))
