"""Operator settings: one TOML file, every key declared once with help, default and security effect.

The file is found at $ENCLAVE_CONFIG, else ./enclave.toml, else built-in defaults are used.  Top-level
keys belong to the ``[enclave]`` section; every other TOML table maps to one ``Configurable`` below.
Unknown sections or keys, and values that do not validate, stop start-up with a message saying what
to fix, so a typo never silently weakens a security setting.

``enclave settings docs`` prints the README table from these declarations.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from traitlets import Bool, Float, Integer, List, TraitError, Unicode, validate
from traitlets.config import Config, Configurable

from enclave.units import parse_bytes


def _between(proposal, low, high):
    """The proposed value, or "<key> must be between <low> and <high>" (the range check of most keys)."""
    if not low <= proposal["value"] <= high:
        raise TraitError(f"{proposal['trait'].name} must be between {low} and {high}")
    return proposal["value"]


class SettingsError(Exception):
    """A settings file that cannot be used; the message says what to change."""


class EnclaveSection(Configurable):
    """[enclave] (or top level): where the enclave keeps its state."""

    state_dir = Unicode(
        ".enclave",
        help="Folder for the database, secrets, workspaces and the quarantine store. Relative paths "
        "are taken from the settings file's folder (or the working directory with no file). "
        "Security: holds the MFA key and project pseudonym keys; keep it readable by root only.",
    ).tag(config=True)

    public_url = Unicode(
        "",
        help="URL people use to reach the enclave, used in enrolment links. Empty: "
        "http://<hub.bind>:<hub.port>.",
    ).tag(config=True)


class HubSection(Configurable):
    """[hub]: where JupyterHub listens."""

    bind = Unicode(
        "127.0.0.1",
        help="Address the public proxy listens on. Security: keep loopback behind a TLS reverse "
        "proxy; never expose plain HTTP.",
    ).tag(config=True)

    port = Integer(8000, help="Port the public proxy listens on.").tag(config=True)

    api_port = Integer(
        8081,
        help="Port of the hub's internal API (the only host port notebook containers may reach).",
    ).tag(config=True)

    db_url = Unicode(
        "",
        help="SQLAlchemy URL of JupyterHub's own database. Empty: jupyterhub.sqlite in state_dir.",
    ).tag(config=True)

    proxy_api_port = Integer(
        8001,
        help="Loopback port of configurable-http-proxy's own API (the hub adds routes through it). "
        "Security: always bound to 127.0.0.1 and protected by a token in state_dir/secrets.",
    ).tag(config=True)

    @validate("port", "api_port", "proxy_api_port")
    def _valid_port(self, proposal):
        return _between(proposal, 1, 65535)


class DatabaseSection(Configurable):
    """[database]: the enclave's own database (accounts, projects, audit, review queue)."""

    url = Unicode(
        "",
        help="SQLAlchemy URL. Empty: SQLite file enclave.sqlite in state_dir. PostgreSQL: "
        "postgresql+psycopg2://user:password@host/dbname.",
    ).tag(config=True)


class AuthSection(Configurable):
    """[auth]: login, MFA and lockout."""

    lockout_threshold = Integer(
        5, help="Failed logins in a row after which an account is locked."
    ).tag(config=True)
    lockout_minutes = Float(
        15.0, help="Minutes an account stays locked (survives hub restarts)."
    ).tag(config=True)
    ip_max_failures = Integer(
        20, help="Failed logins from one source address within ip_window_minutes before it is throttled."
    ).tag(config=True)
    ip_window_minutes = Float(
        15.0, help="Window (minutes) for counting failures per source address; also how long it is throttled."
    ).tag(config=True)
    enrolment_valid_hours = Float(
        72.0, help="Hours an enrolment link stays valid."
    ).tag(config=True)
    totp_issuer = Unicode(
        "Research enclave", help="Issuer name shown in authenticator apps."
    ).tag(config=True)
    argon2_memory_kib = Integer(
        19456,
        help="Argon2id memory cost for password hashes in KiB (OWASP minimum 19 MiB). "
        "Security: lower values make stolen hashes cheaper to crack.",
    ).tag(config=True)
    argon2_time_cost = Integer(2, help="Argon2id iterations (OWASP: 2 with 19 MiB).").tag(config=True)
    recheck_seconds = Integer(
        60,
        help="Seconds between re-checks that a logged-in session's account is still active (also checked "
        "before every spawn). Security: a disabled account loses an open session within this time.",
    ).tag(config=True)

    @validate("recheck_seconds")
    def _recheck(self, proposal):
        return _between(proposal, 1, 3600)

    @validate("argon2_memory_kib")
    def _kdf_floor(self, proposal):
        if proposal["value"] < 19456:
            raise TraitError("argon2_memory_kib below OWASP's 19456 KiB is refused")
        return proposal["value"]


class OIDCSection(Configurable):
    """[oidc]: optional institutional single sign-on (OpenID Connect)."""

    enabled = Bool(False, help="Log in through the institution's IdP instead of local passwords.").tag(
        config=True
    )
    issuer = Unicode("", help="Issuer URL; endpoints are read from its discovery document.").tag(
        config=True
    )
    client_id = Unicode("", help="Client id registered at the IdP.").tag(config=True)
    client_secret = Unicode("", help="Client secret registered at the IdP.").tag(config=True)
    username_claim = Unicode(
        "preferred_username", help="id_token claim that names the enclave account."
    ).tag(config=True)
    mfa_amr_values = List(
        Unicode(),
        ["mfa", "otp", "hwk", "swk"],
        help="amr values in a signature-verified id_token that count as MFA done at the IdP "
        "(then the enclave TOTP is not asked).",
    ).tag(config=True)
    mfa_acr_values = List(
        Unicode(),
        [],
        help="acr values that count as MFA done at the IdP.",
    ).tag(config=True)
    display_name = Unicode(
        "your institution", help="Shown on the login button: 'Sign in with <display_name>'."
    ).tag(config=True)
    mfa_step_minutes = Float(
        5.0,
        help="Minutes a person has, after signing in at the IdP, to enter the enclave TOTP. "
        "Security: the half-done login lives in a signed, encrypted cookie that expires after this.",
    ).tag(config=True)

    @validate("issuer")
    def _valid_issuer(self, proposal):
        from urllib.parse import urlsplit

        value = proposal["value"].rstrip("/")
        if not value:
            return value
        url = urlsplit(value)
        loopback = url.hostname in ("127.0.0.1", "::1", "localhost")
        if url.scheme != "https" and not (url.scheme == "http" and loopback):
            raise TraitError("issuer must be an https:// URL (plain http only for a loopback test IdP)")
        return value

    @validate("mfa_step_minutes")
    def _valid_step(self, proposal):
        return _between(proposal, 0.5, 30)


def _bytes_trait_check(name: str, value: str) -> str:
    """Memory sizes are validated at load time so a typo stops start-up (enclave.units.parse_bytes)."""

    try:
        parse_bytes(value)
    except ValueError as exc:
        raise TraitError(f"{name}: {exc}") from None
    return value


def _image_name_check(key: str, value: str, required: bool = False) -> str:
    """A Docker image name, cleaned; refused at load time so a typo never reaches `docker run`."""
    value = value.strip()
    if required and not value:
        raise TraitError(f"{key} must name an image, e.g. enclave-notebook:latest (an empty name is refused)")
    repository = value.split("@")[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    if value and (any(c.isspace() for c in value) or repository != repository.lower()):
        raise TraitError(f"{key} {value!r} is not a Docker image name (lower-case repository, no spaces)")
    return value


class SpawnerSection(Configurable):
    """[spawner]: the per-project notebook containers (see docs/spawner.md)."""

    image = Unicode(
        "",
        help="Docker image every notebook server runs. Empty: [images] notebook, the image `enclave image "
        "build` makes. Set it only to run an image the enclave does not build (e.g. from the site's "
        "registry): start-up then prints a warning. Security: the image decides what software "
        "researchers have and carries the no-download policy; it is never pulled from a registry.",
    ).tag(config=True)
    allowed_images = List(
        Unicode(),
        [],
        help="The only images a notebook container may run; researchers cannot choose another. Empty: "
        "just `image`. Set it to pin the vetted images apart from the choice of one (e.g. old and new during "
        "a migration). Security: start-up fails if `image` is not on this list.",
    ).tag(config=True)
    mem_limit = Unicode(
        "4G",
        help="Memory limit of one notebook container (e.g. 4G, 512M); a project's own mem_limit overrides "
        "it. Security: bounds what one researcher can take from everyone else.",
    ).tag(config=True)
    cpu_limit = Float(
        1.0, help="CPUs one notebook container may use (a project's cpu_limit overrides it)."
    ).tag(config=True)
    pids_limit = Integer(
        512, help="Maximum processes/threads in one notebook container. Security: stops fork bombs."
    ).tag(config=True)
    memory_reserve = Unicode(
        "2 GiB",
        help="Memory the host keeps free: a start that would leave less available memory than this "
        "(counting the new container's mem_limit) is refused with a message instead of slowing everyone.",
    ).tag(config=True)
    idle_timeout = Integer(
        3600,
        help="Seconds without activity after which jupyterhub-idle-culler stops a notebook server "
        "(minimum 300). Security: an unattended session does not stay open.",
    ).tag(config=True)
    tmpfs_paths = List(
        Unicode(),
        ["/tmp", "/home/jovyan"],
        help="Writable in-memory folders of the otherwise read-only container filesystem (emptied at "
        "every start). /home/jovyan/work is the persistent workspace mounted over it.",
    ).tag(config=True)
    tmpfs_size = Unicode(
        "256m", help="Size limit of each tmpfs folder (counts towards the container's memory)."
    ).tag(config=True)
    start_timeout = Integer(
        120, help="Seconds a notebook server may take to start before the start is reported as failed."
    ).tag(config=True)
    access_check_seconds = Integer(
        60,
        help="Seconds between checks that every running notebook server's person may still work in its "
        "project (same rules as a start: account active, member, project active and within its dates); "
        "a server that fails is stopped and audited (notebook.revoked). `enclave project suspend`, `close`, "
        "`remove-member` and `enclave user disable` also stop affected servers at once when the hub runs. "
        "Security: an end date passing is noticed within this time (1-3600).",
    ).tag(config=True)
    network_prefix = Unicode(
        "enclave-",
        help="Prefix of per-project Docker network names (network = prefix + project) and containers.",
    ).tag(config=True)
    bridge_prefix = Unicode(
        "enc-",
        help="Prefix (at most 8 characters) of the Linux bridge of each project network; the host "
        "firewall matches bridges by this prefix. Security: change only with `enclave firewall remove` "
        "first, so no rule is left behind.",
    ).tag(config=True)
    firewall = Bool(
        True,
        help="Apply the host firewall rules (iptables) when the hub starts. Security: without them a "
        "container reaches every host service on its gateway address.",
    ).tag(config=True)
    firewall_chain = Unicode(
        "ENCLAVE",
        help="Prefix of the iptables chains the enclave owns (<prefix>-INPUT, <prefix>-FWD).",
    ).tag(config=True)

    @validate("mem_limit", "memory_reserve", "tmpfs_size")
    def _valid_size(self, proposal):
        return _bytes_trait_check(proposal["trait"].name, proposal["value"])

    @validate("cpu_limit")
    def _valid_cpu(self, proposal):
        if not 0 < proposal["value"] <= 1024:
            raise TraitError("cpu_limit must be a positive number of CPUs, e.g. 1.0 or 0.5")
        return proposal["value"]

    @validate("pids_limit")
    def _valid_pids(self, proposal):
        if proposal["value"] < 32:
            raise TraitError("pids_limit below 32 leaves Jupyter unable to start kernels")
        return proposal["value"]

    @validate("access_check_seconds")
    def _valid_access_check(self, proposal):
        return _between(proposal, 1, 3600)

    @validate("idle_timeout")
    def _valid_idle(self, proposal):
        if proposal["value"] < 300:
            raise TraitError("idle_timeout must be at least 300 seconds (the culler checks every minute)")
        return proposal["value"]

    @validate("bridge_prefix")
    def _valid_bridge_prefix(self, proposal):
        import re

        if not re.fullmatch(r"[a-z][a-z0-9-]{0,7}", proposal["value"]):
            raise TraitError("bridge_prefix must be 1-8 lowercase letters, digits or '-', starting with a letter")
        return proposal["value"]

    @validate("firewall_chain")
    def _valid_chain(self, proposal):
        import re

        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,19}", proposal["value"]):
            raise TraitError("firewall_chain must be 1-20 letters, digits, '-' or '_'")
        return proposal["value"]

    @validate("network_prefix")
    def _valid_network_prefix(self, proposal):
        import re

        if not re.fullmatch(r"[a-z][a-z0-9_.-]{0,30}", proposal["value"]):
            raise TraitError("network_prefix must start with a letter and use a-z, 0-9, '_', '.', '-'")
        return proposal["value"]

    @validate("image")
    def _valid_image(self, proposal):
        return _image_name_check("image", proposal["value"])

    @validate("allowed_images")
    def _valid_allowed_images(self, proposal):
        return [_image_name_check("allowed_images", name, required=True) for name in proposal["value"]]

    def follow_built_image(self, notebook: str) -> str | None:
        """Fill the empty `image` and `allowed_images` from [images] notebook, so the operator names the
        image once; then refuse an image off the allow-list. Returns a warning when `image` was set to
        another image than the one `enclave image build` makes (allowed: a site may run a registry image)."""
        derived = not self.image
        if derived:
            self.image = notebook
        if not self.allowed_images:
            self.allowed_images = [self.image]
        if self.image not in self.allowed_images:
            origin = " (from [images] notebook)" if derived else ""
            raise TraitError(
                f"image '{self.image}'{origin} is not in allowed_images {list(self.allowed_images)}; "
                "add it there, or set [spawner] image to an allowed image"
            )
        if self.image != notebook:
            return (
                f"[spawner] image '{self.image}' differs from [images] notebook '{notebook}': the hub runs "
                f"'{self.image}', `enclave image build` makes '{notebook}'; remove [spawner] image to run the built one"
            )
        return None


class EgressSection(Configurable):
    """[egress]: the output review service at /services/egress/ (see docs/egress.md)."""

    reviewers_required = Integer(
        2,
        help="Different stewards who must approve every file before a request is released (never the "
        "requester). Security: 1 lets a single person release outputs; OpenSAFELY and most TREs use 2.",
    ).tag(config=True)
    bind = Unicode(
        "127.0.0.1",
        help="Address the review service listens on; JupyterHub's proxy forwards /services/egress/ to it. "
        "Security: keep it on loopback, people reach it only through the hub's proxy and OAuth.",
    ).tag(config=True)
    port = Integer(8091, help="Port the review service listens on (loopback).").tag(config=True)
    max_files_per_request = Integer(50, help="Most files one release request may hold.").tag(config=True)
    max_file_mib = Integer(
        100, help="Largest file (MiB) that may be submitted; bigger outputs are refused at submission."
    ).tag(config=True)
    max_request_mib = Integer(
        500, help="Largest total (MiB) of one release request."
    ).tag(config=True)
    preview_rows = Integer(200, help="Table rows shown to stewards in a file preview.").tag(config=True)

    @validate("reviewers_required")
    def _at_least_one(self, proposal):
        if proposal["value"] < 1:
            raise TraitError("reviewers_required must be at least 1 (2 is the usual independent check)")
        return proposal["value"]

    @validate("port")
    def _valid_port(self, proposal):
        return _between(proposal, 1, 65535)

    @validate("max_files_per_request", "max_file_mib", "max_request_mib", "preview_rows")
    def _positive(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]


class GuardSection(Configurable):
    """[guard]: the host guard between notebook containers and browsers (see docs/guard.md). It meters,
    paces and caps the bytes each notebook server sends toward people, and refuses download paths,
    on the host where code in the container cannot reach it. A project may override the byte bounds
    and terminals (`enclave project limits`); a steward may raise a person's cap for a day."""

    enabled = Bool(
        True,
        help="Put every notebook server behind the host guard. Security: false leaves bytes toward browsers "
        "unbounded and downloads refused only by the image, inside the researcher's container (start-up "
        "warns); only for hosts without nftables or HAProxy, never with real data.",
    ).tag(config=True)
    burst_mib = Integer(
        48,
        help="Bytes (MiB) a notebook server may send at full speed before it is slowed to the sustained "
        "rate; the allowance refills at that rate. Opening JupyterLab with an empty browser cache and "
        "running a first cell sent about 6 MB (`python -m bench guard`). Security: a bulk copy gets this "
        "much out at speed, then only the sustained rate.",
    ).tag(config=True)
    sustained_kib_per_s = Integer(
        28,
        help="Sustained rate (KiB/s, counted on IP packets) once the burst is spent: 28 is 1.7 MB/min, "
        "enough for tables, plots and typing. Security: bounds an exact copy to this rate.",
    ).tag(config=True)
    daily_mib = Integer(
        256,
        help="Most bytes (MiB) one person's notebook server of one project may send toward people in a day; "
        "at the cap the server is stopped and cannot start again that day unless a steward raises it "
        "(`enclave volume raise`). Security: bounds what leaves in a day whatever the channel.",
    ).tag(config=True)
    terminals = Bool(
        True,
        help="Offer terminals in notebooks (metered like every other channel). A project may switch them "
        "off; the host refuses terminal paths, and the server is told not to offer them.",
    ).tag(config=True)
    contents_read_mib = Integer(
        5,
        help="Largest contents-API answer (MiB) the host lets through, and only with a Content-Length; "
        "the image's own limit stays as a second layer. Security: no file in bulk through the file API.",
    ).tag(config=True)
    record_seconds = Integer(
        300, help="How often each running server's volume is written to the audit log (notebook.egress_volume)."
    ).tag(config=True)
    sample_seconds = Float(
        5.0, help="How often the guard reads the host's byte counters (caps are enforced by the kernel meanwhile)."
    ).tag(config=True)
    proxy_port = Integer(
        8095, help="Loopback port of the guard's HTTP proxy (HAProxy) between the hub's proxy and the notebooks."
    ).tag(config=True)
    log_port = Integer(
        8096, help="Loopback UDP port on which the guard service receives the proxy's refusal log."
    ).tag(config=True)
    nft_table = Unicode(
        "enclave_guard", help="nftables table (inet) holding the guard's meters, pacers and caps."
    ).tag(config=True)

    @validate("burst_mib", "sustained_kib_per_s", "daily_mib", "contents_read_mib", "record_seconds")
    def _positive(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]

    @validate("sample_seconds")
    def _sample(self, proposal):
        return _between(proposal, 0.2, 60)

    @validate("proxy_port", "log_port")
    def _valid_port(self, proposal):
        return _between(proposal, 1, 65535)


class IngestSection(Configurable):
    """[ingest]: what `enclave data import` accepts (re-identification risk, identifier columns)."""

    max_unique_share = Float(
        0.01,
        help="Largest share (0-1) of imported records that may be unique on the declared "
        "quasi-identifiers. Above it the import is refused unless the steward passes --accept-risk "
        "(audited). Security: higher values let more people be singled out by age, sex, place...",
    ).tag(config=True)

    min_k = Integer(
        1,
        help="Smallest equivalence class (k-anonymity) the quasi-identifiers must reach; 1 turns the "
        "check off, 5 or 11 demand k-anonymity. Below it the import is refused unless --accept-risk.",
    ).tag(config=True)

    min_id_distinct_share = Float(
        0.01,
        help="An --id-columns column must have at least this many different values per record "
        "(0.01: on average at most 100 records per person); fewer means it is not an identifier "
        "(e.g. sex, a ward) and pseudonymising it is refused as a likely mistake.",
    ).tag(config=True)

    @validate("max_unique_share", "min_id_distinct_share")
    def _share(self, proposal):
        return _between(proposal, 0, 1)

    @validate("min_k")
    def _k(self, proposal):
        if proposal["value"] < 1:
            raise TraitError("min_k must be at least 1 (1 turns the k check off)")
        return proposal["value"]


class PackagesSection(Configurable):
    """[packages]: the offline package index notebook containers install from (see docs/packages.md)."""

    enabled = Bool(
        True,
        help="Run the package index and let notebook containers reach it on their project gateway. "
        "Security: it serves only package files imported from verified bundles, and to each project only "
        "what its allow-list allows; false leaves researchers with the image's packages only.",
    ).tag(config=True)
    index_port = Integer(
        8093,
        help="Port of the package index on every project gateway (the host firewall lets containers reach "
        "this port and the hub API port on their own gateway, nothing else).",
    ).tag(config=True)

    @validate("index_port")
    def _valid_port(self, proposal):
        return _between(proposal, 1, 65535)


class ImportsSection(Configurable):
    """[imports]: code and package requests coming into the enclave through the review service."""

    reviewers_required = Integer(
        1,
        help="Different stewards or admins who must approve code or a package coming in (never the "
        "requester). Code in is not an output, so one reviewer is the usual bar.",
    ).tag(config=True)
    max_file_kib = Integer(
        512, help="Largest code file (KiB) that may be brought in; tables and binaries never may."
    ).tag(config=True)
    max_files = Integer(20, help="Most files in one code import request.").tag(config=True)
    clamav_database = Unicode(
        "/var/lib/clamav",
        help="Folder of ClamAV signatures code coming in is scanned with (copy them from a connected "
        "host's freshclam on an air-gapped site). Without signatures code is not scanned and every file "
        "is marked for the reviewer to look at (review).",
    ).tag(config=True)
    workspace_folder = Unicode(
        "imports", help="Folder of the requester's workspace where approved code lands."
    ).tag(config=True)

    @validate("reviewers_required", "max_file_kib", "max_files")
    def _positive(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]

    @validate("workspace_folder")
    def _plain_folder(self, proposal):
        value = proposal["value"].strip("/")
        if not value or any(part in ("", ".", "..") for part in value.split("/")):
            raise TraitError("workspace_folder must be a relative folder inside the workspace, without '..'")
        return value


class MailSection(Configurable):
    """[mail]: notifications by e-mail through the site's SMTP relay (off while smtp_host is empty)."""

    smtp_host = Unicode(
        "",
        help="The site's SMTP relay. Empty: no mail is sent and nothing is queued for long (the notifier "
        "drops what it finds). Messages say what happened and link to the page; never data or file names.",
    ).tag(config=True)
    smtp_port = Integer(25, help="Port of the SMTP relay (587 with starttls, 465 with tls).").tag(config=True)
    security = Unicode(
        "starttls",
        help="How the connection to the relay is protected: starttls, tls (implicit, port 465) or none (a "
        "relay on loopback only). Security: none sends notifications in clear on the network.",
    ).tag(config=True)
    sender = Unicode("enclave@localhost", help="From: address of every notification.").tag(config=True)
    username = Unicode(
        "", help="Login at the relay (empty: none); the password is the file secrets/smtp_password."
    ).tag(config=True)
    digest_hour = Integer(7, help="Hour (UTC, 0-23) the daily digests go out, for people who chose them.").tag(
        config=True)
    send_seconds = Float(15, help="How often the notifier sends what is due.").tag(config=True)

    @validate("security")
    def _security(self, proposal):
        if proposal["value"] not in ("starttls", "tls", "none"):
            raise TraitError("security must be starttls, tls or none")
        return proposal["value"]

    @validate("smtp_port")
    def _valid_port(self, proposal):
        return _between(proposal, 1, 65535)

    @validate("digest_hour")
    def _hour(self, proposal):
        return _between(proposal, 0, 23)

    @validate("send_seconds")
    def _seconds(self, proposal):
        return _between(proposal, 0.2, 3600)

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_host)


class AdminSection(Configurable):
    """[admin]: the admin pages (people, projects, datasets, audit log) at /services/admin/."""

    enabled = Bool(
        True,
        help="Serve the admin pages through the hub (admins only, behind the hub's login with MFA). "
        "false leaves the `enclave` command as the only way to administer.",
    ).tag(config=True)
    port = Integer(8097, help="Loopback port of the admin pages service (the hub's proxy publishes it).").tag(config=True)

    @validate("port")
    def _valid_port(self, proposal):
        return _between(proposal, 1, 65535)


class OptoutSection(Configurable):
    """[optout]: patients' objections to the reuse of their data (see docs/optout.md)."""

    id_columns = List(
        Unicode(),
        ["nir"],
        help="Kinds of identifier objections may be recorded under (`enclave optout add --id-column`); an "
        "import drops objecting people's records from a pseudonymised column of the same name.",
    ).tag(config=True)


class TransparencySection(Configurable):
    """[transparency]: the public register of projects and releases (see docs/transparency.md)."""

    enabled = Bool(
        True,
        help="Serve the public register (no login) at /services/transparency/. Security: it shows only "
        "what the keys below allow, never personal data or file contents.",
    ).tag(config=True)
    port = Integer(8094, help="Loopback port of the register service (the hub's proxy publishes it).").tag(config=True)
    site_name = Unicode("", help="Name of the organisation shown on the register and in exports.").tag(config=True)
    datasets = Bool(True, help="List each project's datasets by name.").tag(config=True)
    releases = Bool(True, help="List releases: date, project, number of files and their kinds.").tag(config=True)
    optout_totals = Bool(True, help="Show how many objections are registered and how many records they "
                         "removed per project (below the threshold as 'fewer than N').").tag(config=True)

    @validate("port")
    def _valid_port(self, proposal):
        return _between(proposal, 1, 65535)


class SwarmSection(Configurable):
    """[swarm]: notebook servers across a Docker Swarm (see docs/scale-out.md)."""

    enabled = Bool(
        False,
        help="Run notebook servers as services of the Docker Swarm the hub's host manages, on the nodes "
        "`enclave swarm check` verified, each behind a gateway on the hub's host. Off: every server runs "
        "on the hub's host. Security: every node must mount the same data (read-only) and workspaces at "
        "the hub's paths and hold the manager's notebook image; `enclave image ensure` builds the gateway "
        "image here (docs/scale-out.md).",
    ).tag(config=True)
    gateway_image = Unicode(
        "enclave-gateway:latest",
        help="Image of the gateway each server gets on the hub's host (images/gateway: Debian's HAProxy).",
    ).tag(config=True)

    check_timeout_seconds = Float(
        90.0, help="How long `enclave swarm check` waits for one node's probe (it may have to start the "
        "image there first) before refusing the node.",
    ).tag(config=True)

    @validate("check_timeout_seconds")
    def _valid_timeout(self, proposal):
        return _between(proposal, 1, 3600)

    @validate("gateway_image")
    def _valid_gateway_image(self, proposal):
        return _image_name_check("gateway_image", proposal["value"], required=True)


class ImagesSection(Configurable):
    """[images]: the researcher notebook image and how it is built (no registry, no PyPI at build)."""

    notebook = Unicode(
        "enclave-notebook:latest",
        help="Name of the notebook image `enclave image build` makes and the spawner runs: the one name "
        "to set for a new image ([spawner] image and allowed_images follow it unless set). Security: the "
        "image carries the no-download policy; only images in [spawner] allowed_images are ever spawned.",
    ).tag(config=True)

    base_image = Unicode(
        "",
        help="Debian 12 image to build on (e.g. from the site's registry). Empty: "
        "enclave-base:bookworm, built locally with debootstrap (images/base/build-base.sh) when missing.",
    ).tag(config=True)

    wheelhouse = Unicode(
        "",
        help="Folder of Python wheels the image is installed from (filled with `pip download` when "
        "incomplete; copy it to build on an air-gapped host). Empty: images/notebook/wheelhouse in "
        "the source tree; relative paths are taken from state_dir.",
    ).tag(config=True)

    @validate("notebook", "base_image")
    def _valid_image_name(self, proposal):
        name = proposal["trait"].name
        return _image_name_check(name, proposal["value"], required=name == "notebook")


class DisclosureSection(Configurable):
    """[disclosure]: thresholds of the automated disclosure checks on outputs (see docs/checks.md).
    The smallest cell count is per project (`enclave project create --min-cell-count`)."""

    zeros_are_disclosive = Bool(
        True,
        help="Zero cells in frequency tables fail the checks (ACRO's default); false: they only warn. "
        "Security: a zero tells that nobody in a group has an attribute.",
    ).tag(config=True)
    p_ratio = Float(
        0.10,
        help="p% rule: a cell fails when its total minus its two largest contributions is under this share "
        "of the largest (ACRO default 0.10). Security: lower lets dominated cells out.",
    ).tag(config=True)
    nk_n = Integer(2, help="n of the n,k dominance rule: how many largest contributions are summed (ACRO: 2).").tag(
        config=True)
    nk_k = Float(
        0.90,
        help="k of the n,k rule: a cell fails when its n largest contributions exceed this share of its total "
        "(ACRO: 0.90). Security: higher lets dominated cells out.",
    ).tag(config=True)

    @validate("p_ratio", "nk_k")
    def _share(self, proposal):
        if not 0 < proposal["value"] < 1 and not (proposal["trait"].name == "nk_k" and proposal["value"] == 1):
            raise TraitError(f"{proposal['trait'].name} is a share: write a number between 0 and 1, e.g. 0.1")
        return proposal["value"]

    @validate("nk_n")
    def _at_least_one(self, proposal):
        if proposal["value"] < 1:
            raise TraitError("nk_n must be at least 1 (ACRO uses 2)")
        return proposal["value"]


SECTIONS: dict[str, type[Configurable]] = {
    "enclave": EnclaveSection,
    "hub": HubSection,
    "database": DatabaseSection,
    "auth": AuthSection,
    "oidc": OIDCSection,
    "spawner": SpawnerSection,
    "egress": EgressSection,
    "guard": GuardSection,
    "ingest": IngestSection,
    "images": ImagesSection,
    "disclosure": DisclosureSection,
    "packages": PackagesSection,
    "imports": ImportsSection,
    "mail": MailSection,
    "admin": AdminSection,
    "optout": OptoutSection,
    "transparency": TransparencySection,
    "swarm": SwarmSection,
}


class Settings:
    """All sections, loaded and validated; attribute per section (settings.hub.port). `warnings` holds
    one line per setting that is allowed but probably a mistake (the CLI prints them)."""

    def __init__(self, data: dict | None = None, base_dir: Path | None = None, source: str = "defaults"):
        self.source = source
        self.warnings: list[str] = []
        data = dict(data or {})
        top = {k: v for k, v in data.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in data.items() if isinstance(v, dict)}
        tables.setdefault("enclave", {}).update(top)
        cfg = Config()
        for name, values in tables.items():
            cls = SECTIONS.get(name)
            if cls is None:
                raise SettingsError(
                    f"{source}: unknown section [{name}]; known sections: {', '.join(sorted(SECTIONS))}"
                )
            known = set(cls.class_own_traits(config=True)) | set(cls.class_traits(config=True))
            for key in values:
                if key not in known:
                    raise SettingsError(
                        f"{source}: unknown key '{key}' in [{name}]; known keys: {', '.join(sorted(known))}"
                    )
            cfg[cls.__name__] = Config(values)
        for name, cls in SECTIONS.items():
            try:
                setattr(self, name, cls(config=cfg))
            except TraitError as exc:
                raise SettingsError(f"{source}: [{name}] {exc}") from None
        self._cross_section_defaults(source)
        self._distinct_ports(source)
        base = base_dir or Path.cwd()
        state = Path(self.enclave.state_dir).expanduser()
        self.state_dir: Path = (state if state.is_absolute() else base / state).resolve()

    def _cross_section_defaults(self, source: str) -> None:
        """Keys whose default is another section's value, filled after every section validated itself
        (so `settings show` and the hub see the effective value): the notebook image is named once."""
        try:
            warning = self.spawner.follow_built_image(self.images.notebook)
        except TraitError as exc:
            raise SettingsError(f"{source}: [spawner] {exc}") from None
        if warning:
            self.warnings.append(warning)

    REMOTE_PORTS = {("mail", "smtp_port")}  # ports the enclave connects to, not ones it listens on

    def _distinct_ports(self, source: str) -> None:
        """Two parts of the enclave cannot listen on one port: refuse such settings at load, naming both
        keys (else a service would fail to start and take the hub down with it)."""
        seen: dict[int, str] = {}
        for name in SECTIONS:
            section = getattr(self, name)
            for key in sorted(type(section).class_own_traits(config=True)):
                if (key == "port" or key.endswith("_port")) and (name, key) not in self.REMOTE_PORTS:
                    port = getattr(section, key)
                    if port in seen:
                        raise SettingsError(f"{source}: [{name}] {key} = {port} is also {seen[port]}; "
                                            "every listening port must be different")
                    seen[port] = f"[{name}] {key}"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.state_dir / 'enclave.sqlite'}"

    @property
    def hub_db_url(self) -> str:
        return self.hub.db_url or f"sqlite:///{self.state_dir / 'jupyterhub.sqlite'}"

    @property
    def public_url(self) -> str:
        return (self.enclave.public_url or f"http://{self.hub.bind}:{self.hub.port}").rstrip("/")


def load(path: str | os.PathLike | None = None) -> Settings:
    """Settings from `path`, $ENCLAVE_CONFIG, ./enclave.toml, or defaults, in that order."""
    if path is None:
        path = os.environ.get("ENCLAVE_CONFIG") or None
        if path is None and Path("enclave.toml").is_file():
            path = "enclave.toml"
    override = os.environ.get("ENCLAVE_STATE_DIR")
    if path is None:
        data, base, source = {}, None, "defaults"
    else:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise SettingsError(f"settings file {p} does not exist (from ENCLAVE_CONFIG or argument)") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{p}: not valid TOML: {exc}") from None
        base, source = p.resolve().parent, str(p)
    if override:  # set by `enclave up` for the hub process, which runs from inside state_dir
        data.pop("state_dir", None)
        data.setdefault("enclave", {})["state_dir"] = override
    return Settings(data, base_dir=base, source=source)


def docs_markdown() -> str:
    """Markdown table of every key, generated from the declarations (for the README)."""
    rows = ["| section | key | default | what it does |", "|---|---|---|---|"]
    for name, cls in SECTIONS.items():
        for key, trait in sorted(cls.class_traits(config=True).items()):
            rows.append(f"| [{name}] | `{key}` | `{trait.default_value_repr()}` | {trait.help} |")
    return "\n".join(rows)


README_START = "<!-- settings-table: generated by `enclave settings docs` -->"
README_END = "<!-- /settings-table -->"


def with_docs_table(readme: str) -> str:
    """README text with the settings table between its markers replaced by the current declarations."""
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{docs_markdown()}\n{README_END}{tail}"
