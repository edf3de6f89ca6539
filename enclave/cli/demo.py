"""`enclave demo [--reset] [--if-empty]`: a demo enclave for newcomers: a synthetic pseudonymised hospital-stays dataset in project `demo`,
an admin, two researchers and two stewards, each with a one-time enrolment link.

The data are made up (seeded random numbers shaped like French PMSI stays): nothing real, but enough
structure that small cells, dominance and record-level extracts show up in the egress checks.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData, select

from enclave import accounts, audit, db, paths, projects
from enclave.cli.context import load
from enclave.errors import Conflict
from enclave.models import Account, Role

from ingest import importer

DEMO_PROJECT = "demo"
DEMO_PEOPLE = [
    ("admin", Role.admin),
    ("alice", Role.researcher),
    ("bob", Role.researcher),
    ("carol", Role.steward),
    ("dave", Role.steward),
]
DIAGNOSES = [  # ICD-10 codes with rough relative frequencies
    ("I21", 8), ("I50", 10), ("J18", 12), ("E11", 9), ("N39", 7), ("S72", 6), ("K35", 5),
    ("C34", 4), ("F32", 3), ("O80", 8), ("A41", 2), ("G35", 1),
]
POSTCODE_AREAS = ["75", "92", "93", "94", "69", "13", "33", "59", "31", "67", "06", "44"]


@dataclass
class DemoUser:
    username: str
    role: str
    enrolment_url: str


def write_stays(path: Path, n_patients: int = 2000, seed: int = 42) -> int:
    """Synthetic stays: patient_nir (identifier, pseudonymised at import), sex, birth_year, age,
    postcode_area, admission_date, diagnosis, length_of_stay. Returns the number of rows."""
    rng = random.Random(seed)
    codes, weights = zip(*DIAGNOSES)
    rows = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_nir", "sex", "birth_year", "age", "postcode_area", "admission_date",
                    "diagnosis", "length_of_stay"])
        for i in range(n_patients):
            sex = rng.choice("FM")
            birth = rng.randint(1930, 2015)
            nir = f"{1 if sex == 'M' else 2}{birth % 100:02d}{rng.randint(1, 12):02d}{rng.randint(10**8, 10**9 - 1)}"
            area = rng.choice(POSTCODE_AREAS)
            for _ in range(1 + int(rng.expovariate(0.9))):
                day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
                diag = rng.choices(codes, weights)[0]
                if diag == "O80" and sex == "M":
                    diag = "K35"
                los = max(0, int(rng.lognormvariate(1.2, 0.8)))
                w.writerow([nir, sex, birth, day.year - birth, area, day.isoformat(), diag, los])
                rows += 1
    return rows


def has_accounts(url: str) -> bool:
    with db.transaction(url) as s:
        return s.execute(select(Account.id).limit(1)).first() is not None


def reset(settings) -> None:
    """Drop every enclave table and the demo's files (JupyterHub must be stopped).

    Every table in the enclave database goes except JupyterHub's own, so a PostgreSQL database
    shared with the hub keeps the hub's tables."""
    from jupyterhub import orm as hub_orm

    engine = db.engine_for(settings.database_url)
    meta = MetaData()
    meta.reflect(engine)
    hub_tables = set(hub_orm.Base.metadata.tables) | {"alembic_version"}
    meta.drop_all(engine, tables=[t for n, t in meta.tables.items() if n not in hub_tables])
    for sub in ("workspaces", "quarantine", "data", "fingerprints", "demo"):
        shutil.rmtree(settings.state_dir / sub, ignore_errors=True)
    shutil.rmtree(paths.project_keys(settings.state_dir), ignore_errors=True)
    db.migrate(settings.database_url)


def create(settings, actor: str = "demo") -> list[DemoUser]:
    """Set up the demo project, people and data; returns the people with their enrolment links."""
    data_dir = settings.state_dir / "data" / DEMO_PROJECT
    data_dir.mkdir(parents=True, exist_ok=True)
    source = settings.state_dir / "demo" / "hospital_stays.csv"
    write_stays(source)
    people: list[DemoUser] = []
    with db.transaction(settings.database_url) as s:
        projects.create(s, actor, DEMO_PROJECT, str(data_dir), title="Demo: hospital stays 2024",
                        min_cell_count=10, purpose="Length of hospital stays by ward (demonstration)",
                        sponsor="Demo site", approval="demonstration data, no approval needed")
        for name, role in DEMO_PEOPLE:
            account, token = accounts.add(s, actor, name, role, settings.auth.enrolment_valid_hours)
            people.append(DemoUser(name, role.value, accounts.enrolment_url(settings, token)))
            if role == Role.researcher:
                projects.add_member(s, actor, DEMO_PROJECT, name)
        audit.record(s, actor, "demo.create", DEMO_PROJECT, {"people": [p.username for p in people]})
    _import(settings, source, actor)
    return people


def _import(settings, source: Path, actor: str) -> None:
    """Import the stays through the real importer: patient ids pseudonymised, birth year dropped,
    risk report on (sex, age, postcode area) written for the steward."""
    importer.import_dataset(settings, actor, importer.ImportRequest(
        project=DEMO_PROJECT, source=source, id_columns=["patient_nir"], drop=["birth_year"],
        quasi_identifiers=["sex", "age", "postcode_area"], name="hospital_stays",
        accept_risk="synthetic demo data: no real person behind any row",
    ))
    source.unlink()  # the identifiable source never stays on the host


# -- the command ------------------------------------------------------------------------------------

def register(sub) -> None:
    p = sub.add_parser("demo", help="create the demo project, data and people (prints enrolment links)")
    p.add_argument("--reset", action="store_true", help="drop every enclave table and demo file first (stop the hub before)")
    p.add_argument("--if-empty", action="store_true", help="do nothing (exit 0) when the database already has accounts")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    s = load(args)
    if args.reset:
        reset(s)
    elif has_accounts(s.database_url):
        if args.if_empty:
            print("database already has accounts: demo not created (`enclave demo --reset` starts over)")
            return 0
        raise Conflict("the database already has accounts; `enclave demo --reset` drops everything and starts over")
    people = create(s)
    print(f"demo project '{DEMO_PROJECT}' with synthetic hospital stays in {s.state_dir / 'data' / DEMO_PROJECT}")
    print("one-time enrolment links (open each in a browser, scan the QR code, set a password):")
    for p in people:
        print(f"  {p.username:6} {p.role:10} {p.enrolment_url}")
    print(f"then log in at {s.public_url}/hub/login")
    return 0
