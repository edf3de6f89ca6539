"""The public transparency register: what it shows (projects, releases as counts, objection totals, the
audit head) and never shows (people, pseudonyms, file names or contents, small exact counts)."""

import asyncio
import json
import re

import pyarrow.parquet as pq
from aiohttp.test_utils import TestClient, TestServer

from enclave import db, projects

from ingest import importer, optout
from transparency import signing
from transparency.web import make_app

PREFIX = "/services/transparency/"


def _get(settings, *paths):
    async def run():
        async with TestClient(TestServer(make_app(settings, PREFIX))) as client:
            out = []
            for p in paths:
                r = await client.get(PREFIX + p)
                out.append((r.status, await r.text()))
            return out
    return asyncio.run(run())


CONTENT = "ward,count\nZEPHYRWARD,120\nQUOKKAWARD,245\n"


def _released_file(egress, name):
    egress.write(name, CONTENT)
    rid = egress.submit(paths=(name,))
    [(fid, *_)] = egress.files(rid)
    egress.decide("sam", fid)
    egress.decide("sue", fid)
    assert egress.status(rid) == "released"


def test_the_public_page_shows_what_happened_and_no_person_or_content(egress, tmp_path):
    s = egress.settings
    with db.transaction(egress.url) as session:
        p = projects.get(session, "cardio")
        p.purpose, p.sponsor, p.approval = "Heart failure outcomes", "CHU Example", "CNIL MR-004 2026-118"
    src = tmp_path / "stays.csv"
    src.write_text("nir,age\n" + "".join(f"1850{i % 20:05d},{40 + i % 3}\n" for i in range(60)))
    importer.import_dataset(s, "steward", importer.ImportRequest("cardio", src, id_columns=["nir"], name="stays"))
    pseudonyms = set(pq.read_table(egress.state_dir.parent / "data" / "stays.parquet").column("nir").to_pylist())
    optout.add(s, "admin", "nir", ["185000003"])
    assert optout.apply(s, "admin")[0].total == 3
    _released_file(egress, "ann_patient_PXYZ_results.csv")

    (status, html), (jstatus, text), (kstatus, key) = _get(s, "", "register.json", "public-key")
    assert status == jstatus == kstatus == 200
    for shown in ("Heart failure outcomes", "CHU Example", "CNIL MR-004 2026-118", "stays", "1 csv",
                  "fewer than 10"):
        assert shown in html, shown
    envelope = json.loads(text)
    reg = signing.verify(envelope, key.strip())
    assert reg["releases"] == [{"date": reg["releases"][0]["date"], "project": "cardio", "files": 1, "kinds": {"csv": 1}}]
    assert reg["optout"] == {"objections": "fewer than 10", "records_removed": {"cardio": "fewer than 10"}}
    # hashes, keys and signatures are random text: only what the register says is searched
    said = json.dumps({k: v for k, v in reg.items() if k != "audit"})
    for body in (re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL), said):
        assert not re.search(r"\b(ann|bob|sam|sue|ada)\b", body)  # no person
        assert "ann_patient" not in body and "PXYZ" not in body  # no file name
        assert "ZEPHYRWARD" not in body and "QUOKKAWARD" not in body  # no content
        assert not pseudonyms & set(re.findall(r"P[A-Z2-7]{16}", body))  # no pseudonym
        assert "185000003" not in body


def test_what_is_published_follows_the_settings(egress):
    s = egress.settings
    s.transparency.releases = False
    s.transparency.optout_totals = False
    s.transparency.datasets = False
    _released_file(egress, "table.csv")
    [(status, text)] = _get(s, "register.json")
    reg = json.loads(text)["register"]
    assert status == 200 and "releases" not in reg and "optout" not in reg
    assert all("datasets" not in p for p in reg["projects"])
    [(_, html)] = _get(s, "")
    assert "Releases" not in html and "Patients' objections" not in html and "Audit log" in html
