"""scripts/audit_dependencies.py: what it concludes from pip-audit's answers (no network).

The reports below are the shapes pip-audit 2.10 writes with `--format json`; the first is
what it wrote on this machine, where PyPI answers 404 for every package's version data.
"""

import importlib.util

import pytest

from tests.processes import PROJECT_ROOT

spec = importlib.util.spec_from_file_location(
    "audit_dependencies", PROJECT_ROOT / "scripts" / "audit_dependencies.py"
)
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def skipped(name: str, version: str) -> dict:
    return {
        "name": name,
        "skip_reason": (
            f"Dependency not found on PyPI and could not be audited: {name} ({version})"
        ),
    }


def audited(name: str, version: str, *vulns: dict) -> dict:
    return {"name": name, "version": version, "vulns": list(vulns)}


OFFLINE = {"dependencies": [skipped("django", "5.2.19"), skipped("daphne", "4.2.3")], "fixes": []}


def test_when_nothing_could_be_looked_up_it_says_skipped_never_clean():
    result = audit.verdict(OFFLINE, 0, "")

    assert result.status == "skipped"
    assert result.message.startswith("skipped:")
    assert "clean" not in result.message
    assert "No known vulnerabilities" not in result.message
    assert result.exit_code == 0  # an offline machine does not fail CI


@pytest.mark.parametrize(
    "stderr",
    [
        "ERROR:pip_audit._cli:Tip: your network may be blocking this service. Try another "
        "service with `-s SERVICE`",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.osv.dev', "
        "port=443): Max retries exceeded with url: /v1/query (Caused by NameResolutionError)",
    ],
    ids=["service-blocked", "no-dns"],
)
def test_when_the_service_cannot_be_reached_it_says_skipped(stderr):
    result = audit.verdict(None, 1, stderr)

    assert (result.status, result.exit_code) == ("skipped", 0)
    assert result.message.startswith("skipped:")
    assert "could not be reached" in result.message


def test_a_known_vulnerability_fails_and_names_the_fix():
    report = {
        "dependencies": [
            audited("django", "5.2.19", {"id": "PYSEC-2099-1", "fix_versions": ["5.2.20"]}),
            audited("daphne", "4.2.3"),
        ]
    }

    result = audit.verdict(report, 1, "")

    assert (result.status, result.exit_code) == ("vulnerable", 1)
    assert "django 5.2.19: PYSEC-2099-1 (fixed in 5.2.20)" in result.message


def test_a_vulnerability_fails_even_if_other_packages_were_skipped():
    report = {"dependencies": [audited("django", "5.2.19", {"id": "GHSA-x"}), skipped("a", "1")]}
    assert audit.verdict(report, 1, "").exit_code == 1


def test_a_partial_audit_says_what_was_not_checked():
    report = {"dependencies": [audited("django", "5.2.19"), skipped("daphne", "4.2.3")]}

    result = audit.verdict(report, 0, "")

    assert (result.status, result.exit_code) == ("partial", 0)
    assert "1 audited" in result.message
    assert "skipped: daphne" in result.message


def test_only_a_full_lookup_is_called_clean():
    report = {"dependencies": [audited("django", "5.2.19"), audited("daphne", "4.2.3")]}
    assert audit.verdict(report, 0, "").message.startswith("clean: ")


def test_pip_audit_failing_for_another_reason_fails_ci():
    result = audit.verdict(None, 1, "ERROR:pip_audit._cli:invalid requirements input: x==")
    assert (result.status, result.exit_code) == ("error", 2)
    assert "invalid requirements input" in result.message
