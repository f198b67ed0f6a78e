"""One broken rule never hides the rest: a rule that cannot be evaluated on the store (a fairness rule naming a
column the store does not have) is in error with its reason; the other rules are evaluated and decide; groups
combine in three-valued logic; `workbench check` exits 1 fired, else 2 when a rule is in error, else 0."""

from __future__ import annotations

import json

import pytest

from tests.stream.test_triggers_store import ACCURACY, cli, with_clock
from workbench.stream.trigger_results import decide
from workbench.stream.triggers import check, parse

# A column the small stores do not have (they hold `region`): the rule cannot be evaluated on them.
BROKEN = """
[[rule]]
name = "fpr_gap"
metric = "fairness_ratio"
attribute = "planet"
window = "day"
op = ">"
threshold = 1.25
"""
QUIET = ACCURACY.replace("accuracy_drop", "accuracy_quiet").replace("threshold = 0.7", "threshold = 0.3")


def rules(text: str, mode: str = "any"):
    return parse(f'mode = "{mode}"\n{text}', "rules.toml")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Accuracy 0.5 on days 1-3: ``accuracy_drop`` (< 0.7 for 3 days) fires from 2026-01-04."""
    return with_clock(tmp_path_factory.mktemp("errors") / "s.duckdb", {0: 0.9, 1: 0.5, 2: 0.5, 3: 0.5}, clock_day=4)


def test_decide_is_three_valued_logic():
    # any: one fired member decides; else an unknown member leaves it undecided
    assert decide("any", [True, None]) is True
    assert decide("any", [False, None]) is None
    assert decide("any", [False, False]) is False
    # all: one quiet member decides; else an unknown member leaves it undecided (it cannot fire)
    assert decide("all", [False, None]) is False
    assert decide("all", [True, None]) is None
    assert decide("all", [True, True]) is True


def test_a_rule_in_error_keeps_its_reason_and_the_others_decide(store):
    result = check(store, rules(ACCURACY + BROKEN))
    accuracy, broken = result.rules
    # the working rule is evaluated as if alone: 0.5 < 0.7 on three days in a row
    assert accuracy.error is None and accuracy.fired and accuracy.value == 0.5 and accuracy.since == "2026-01-04"
    assert broken.error is not None and "planet" in broken.error and not broken.fired and broken.value is None
    assert broken.state is None and broken.fired_buckets == [] and len(broken.frame) == len(accuracy.frame)
    assert result.fired and result.verdict == "fired"  # any: a fired member decides whatever the other says
    assert result.errors == [{"rule": "fpr_gap", "line": 11, "error": broken.error}]
    assert any(r.startswith("fpr_gap: could not be evaluated (line 11)") and "planet" in r for r in result.reasons)
    assert "1 rule could not be evaluated: fpr_gap (line 11)" in result.verdict_text
    # the page's table: the rule in error shows as such, with its reason; the other keeps its value
    frame = result.to_frame()
    row = frame.set_index("rule").loc["fpr_gap"]
    assert row["value now"] == "error" and "planet" in row["error"] and row["fires"] is None
    assert frame.set_index("rule").loc["accuracy_drop", "value now"] == "0.5000"
    assert result.evidence()["rules"]["fpr_gap"]["error"] == broken.error
    document = result.to_json()
    assert [r["error"] for r in document["rules"]] == [None, broken.error]
    assert document["errors"] == result.errors and document["verdict_word"] == "fired"


def test_a_quiet_set_with_a_rule_in_error_is_undecided(store):
    result = check(store, rules(QUIET + BROKEN))
    assert not result.fired and result.undecided and result.verdict == "unknown"
    assert result.verdict_text.startswith("Retrain trigger undecided: fpr_gap could not be evaluated")
    # all: a quiet member decides (the set cannot fire), though the rule in error is still listed
    result = check(store, rules(QUIET + BROKEN, mode="all"))
    assert not result.fired and not result.undecided and result.verdict == "quiet"
    assert result.errors[0]["rule"] == "fpr_gap" and "could not be evaluated" in result.verdict_text


@pytest.mark.parametrize(
    ("mode", "member", "fired", "error"),
    [
        ("all", ACCURACY, False, "fpr_gap could not be evaluated"),  # cannot fire while a member is unknown
        ("all", QUIET, False, None),  # a quiet member decides: quiet
        ("any", ACCURACY, True, None),  # another member fires: fires
        ("any", QUIET, False, "fpr_gap could not be evaluated"),  # the unknown member could fire: undecided
    ],
)
def test_a_group_with_a_member_in_error(store, mode, member, fired, error):
    name = "accuracy_drop" if member is ACCURACY else "accuracy_quiet"
    group = f'\n[[group]]\nname = "both"\nmode = "{mode}"\nrules = ["{name}", "fpr_gap"]\n'
    result = check(store, rules(member + BROKEN + group))
    (both,) = result.groups
    assert both.fired is fired and both.error == error
    assert result.fired is fired and result.undecided is (error is not None)
    if error:
        assert f"both: {mode} of {name}, fpr_gap, undecided: {error}" in result.reasons
        assert "UNDECIDED" in both.sentence() and both.to_dict()["error"] == error
    # over history the member in error never fired: an all group never fires, an any group where the other did
    assert both.fired_buckets == ([] if mode == "all" else result.rules[0].fired_buckets)


def test_check_exits_2_naming_the_rule_in_error_unless_the_set_fires(store, tmp_path):
    quiet = tmp_path / "quiet.toml"
    quiet.write_text(QUIET + BROKEN)
    out = cli("check", "--rules", str(quiet), "--json", db=store.path)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: 1 rule could not be evaluated: fpr_gap (line 10)") and "planet" in line
    document = json.loads(out.stdout)
    assert [r["error"] is None for r in document["rules"]] == [True, False]
    assert document["errors"][0]["rule"] == "fpr_gap" and document["verdict_word"] == "unknown"
    fires = tmp_path / "fires.toml"
    fires.write_text(ACCURACY + BROKEN)
    out = cli("check", "--rules", str(fires), db=store.path)
    assert out.returncode == 1, out.stderr
    assert "fpr_gap: ERROR, could not be evaluated (line 10)" in out.stdout and out.stderr == ""
    ok = tmp_path / "ok.toml"
    ok.write_text(QUIET)
    assert cli("check", "--rules", str(ok), db=store.path).returncode == 0
