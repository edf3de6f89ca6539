"""The allow-list: site and project rules, a project's deny over the site's allow, versions, and what an
allowed package needs coming with it."""

import pytest

from enclave import bundles, db, packages

from tests.support.wheels import r_package, wheel


@pytest.fixture
def repo(cli, enclave_env, tmp_path):
    wh = tmp_path / "wh"
    wheel(wh, "survkit", "0.30", requires=("tinydep",))
    wheel(wh, "survkit", "0.29", requires=("olddep",))
    wheel(wh, "tinydep", "1.2")
    wheel(wh, "olddep", "1.0")
    wheel(wh, "other", "2.0")
    bundles.make(["survkit==0.30", "other"], tmp_path / "b", r_sources=[r_package(tmp_path, "rtiny", "1.0")],
                 pip_args=["--no-index", "--find-links", str(wh)])
    bundles.make(["survkit==0.29"], tmp_path / "b2", pip_args=["--no-index", "--find-links", str(wh)])
    for b in ("b", "b2"):
        assert cli("packages", "import", str(tmp_path / b))[0] == 0
    for slug in ("cardio", "onco"):
        (tmp_path / slug).mkdir()
        assert cli("project", "create", slug, "--data", str(tmp_path / slug))[0] == 0
    return enclave_env


def _visible(env, project, eco="python"):
    with db.transaction(env.db_url) as s:
        return {n: [f.version for f in fs] for n, fs in packages.visible_files(s, eco, project).items()}


def test_nothing_is_visible_until_allowed(repo):
    assert _visible(repo, "cardio") == {}


def test_project_rule_with_its_dependencies_and_versions(cli, repo):
    code, out, _ = cli("packages", "allow", "SurvKit", "--project", "cardio", "--versions", "==0.30")
    assert code == 0 and "allowed python package 'survkit' ==0.30 for project cardio" in out
    assert _visible(repo, "cardio") == {"survkit": ["0.30"], "tinydep": ["1.2"]}  # not 0.29, not olddep
    assert _visible(repo, "onco") == {}  # another project sees nothing


def test_project_deny_wins_over_site_allow(cli, repo):
    assert cli("packages", "allow", "other")[0] == 0
    assert cli("packages", "deny", "other", "--project", "onco", "--reason", "licence")[0] == 0
    assert _visible(repo, "cardio") == {"other": ["2.0"]}
    assert _visible(repo, "onco") == {}
    code, out, _ = cli("packages", "list", "--project", "onco")
    assert "deny" in out and "onco" in out and "site" in out


def test_denied_dependency_is_not_served(cli, repo):
    assert cli("packages", "allow", "survkit", "--versions", "==0.30")[0] == 0
    assert cli("packages", "deny", "tinydep")[0] == 0
    assert _visible(repo, "cardio") == {"survkit": ["0.30"]}


def test_r_packages_and_what_is_missing(cli, repo):
    assert cli("packages", "allow", "rtiny", "--r", "--project", "cardio")[0] == 0
    assert cli("packages", "allow", "lifelines", "--project", "cardio", "--versions", "==0.30")[0] == 0
    assert _visible(repo, "cardio", "r") == {"rtiny": ["1.0"]}
    code, out, _ = cli("packages", "list", "--missing")
    assert "lifelines" in out and "rtiny" not in out


@pytest.mark.parametrize("args, says", [
    (["allow", "../etc"], "is not a Python package name"),
    (["allow", "x", "--versions", "latest"], "is not a version range"),
    (["allow", "x", "--project", "nope"], "no project 'nope'"),
    (["allow", "1bad", "--r"], "is not an R package name"),
])
def test_bad_rules_are_refused(cli, repo, args, says):
    code, _, err = cli("packages", *args)
    assert code == 2 and says in err


def test_a_rule_said_again_changes_nothing(cli, repo):
    from sqlalchemy import func, select

    from enclave.models import AuditEvent

    assert cli("packages", "allow", "survkit")[1].startswith("allowed")
    with db.transaction(repo.db_url) as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    code, out, _ = cli("packages", "allow", "survkit")
    assert code == 0 and out.startswith("already allowed")
    with db.transaction(repo.db_url) as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert cli("packages", "allow", "survkit", "--versions", "==0.30")[1].startswith("allowed")
