"""Controller-side checks through the target's nginx (TLS), as a browser would do them.

    hub_client.py login-page BASE_URL
        the login page answers over HTTPS and asks for a password and the TOTP code
    hub_client.py public-register BASE_URL
        the public transparency register answers without login, with its signed copy
    hub_client.py spawn BASE_URL USERNAME PASSWORD TOTP_SECRET PROJECT
        log in with password + TOTP, start the project's notebook server, wait until it is ready

Exit status 0 and one JSON line on success; a message on stderr and status 1 otherwise. The
certificate is the generated self-signed one, so it is not verified (the test only talks to its own
container).
"""

import json
import sys
import time

import pyotp
import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def fail(msg: str) -> None:
    print(msg, file=sys.stderr)
    sys.exit(1)


def login_page(base: str) -> dict:
    http = requests.Session()
    http.trust_env = False
    r = http.get(f"{base}/hub/login", verify=False, timeout=30)
    if r.status_code != 200:
        fail(f"GET /hub/login answered {r.status_code}")
    for field in ('name="password"', 'name="otp"'):
        if field not in r.text:
            fail(f"the login page has no {field} field")
    return {"status": r.status_code, "hsts": r.headers.get("Strict-Transport-Security", "")}


def public_register(base: str) -> dict:
    http = requests.Session()
    http.trust_env = False
    r = None
    for _ in range(30):  # the hub starts its managed services one after the other
        r = http.get(f"{base}/services/transparency/", verify=False, timeout=30)
        if r.status_code == 200:
            break
        time.sleep(2)
    if r.status_code != 200 or "Transparency register" not in r.text:
        fail(f"GET /services/transparency/ answered {r.status_code}")
    signed = http.get(f"{base}/services/transparency/register.json", verify=False, timeout=30).json()
    if signed.get("signature", {}).get("alg") != "Ed25519":
        fail("the register's JSON copy is not signed")
    return {"status": r.status_code, "projects": len(signed["register"]["projects"])}


def spawn(base: str, username: str, password: str, secret: str, project: str) -> dict:
    http = requests.Session()
    http.verify = False
    http.trust_env = False  # no proxy, no CA bundle from the environment: only the target container
    r = http.get(f"{base}/hub/login", timeout=30)
    xsrf = http.cookies.get("_xsrf", "")
    form = {"username": username, "password": password, "otp": pyotp.TOTP(secret).now(), "_xsrf": xsrf}
    r = http.post(f"{base}/hub/login", data=form, timeout=60, allow_redirects=False)
    if r.status_code != 302:
        fail(f"login as {username} refused ({r.status_code}): {r.text[:300]}")
    http.get(f"{base}{r.headers['Location']}" if r.headers["Location"].startswith("/") else r.headers["Location"],
             timeout=30)
    xsrf = http.cookies.get("_xsrf", xsrf)
    headers = {"X-XSRFToken": xsrf, "Referer": f"{base}/hub/home"}
    r = http.post(f"{base}/hub/api/users/{username}/servers/{project}", headers=headers, timeout=120)
    if r.status_code not in (201, 202):
        fail(f"starting the {project} server answered {r.status_code}: {r.text[:300]}")
    started = time.monotonic()
    while time.monotonic() - started < 240:
        r = http.get(f"{base}/hub/api/users/{username}", headers=headers, timeout=30)
        server = r.json().get("servers", {}).get(project) or {}
        if server.get("ready"):
            return {"user": username, "server": project, "url": server.get("url"),
                    "seconds": round(time.monotonic() - started, 1)}
        if r.status_code != 200 or (server and not server.get("pending") and not server.get("ready")):
            fail(f"server {project} did not start: {r.status_code} {json.dumps(server)[:300]}")
        time.sleep(2)
    fail(f"server {project} not ready after 240 s")


if __name__ == "__main__":
    cmd, base, *rest = sys.argv[1:]
    if cmd == "login-page":
        result = login_page(base)
    elif cmd == "public-register":
        result = public_register(base.rstrip("/"))
    else:
        result = spawn(base.rstrip("/"), *rest)
    print(json.dumps(result))
