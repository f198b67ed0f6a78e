"""The rules file: what parses, and every refusal names the file and the line of the offending key."""

from __future__ import annotations

import re
from datetime import date

import pytest

from tests.conftest import ROOT
from workbench.core.errors import InputError
from workbench.stream.rules import Param, date_range, parse_rules, whole
from workbench.stream.triggers import METRICS, Metric, load_rules, parse

GOOD = """\
mode = "any"

[[rule]]
name = "accuracy_drop"
metric = "online_accuracy"
window = "day"
op = "<"
threshold = 0.7
for = 3
min_n = 300
label_types = ["outcome"]

[[rule]]
name = "clicks"
metric = "positive_feedback_rate"
feedback_type = "click"
op = "<="
threshold = 0.2
window = "hour"

[[rule]]
name = "labels"
metric = "new_labels_since_retrain"
op = ">="
threshold = 1000

[[rule]]
name = "cooldown"
metric = "days_since_retrain"
op = ">="
threshold = 30

[[group]]
name = "signal_and_cooldown"
mode = "all"
rules = ["labels", "cooldown"]

[[group]]
name = "either"
mode = "any"
rules = ["signal_and_cooldown", "accuracy_drop"]
"""


def refusal(text: str) -> str:
    with pytest.raises(InputError) as info:
        parse(text, "rules.toml")
    return str(info.value)


def line_of(message: str) -> int:
    match = re.match(r"rules\.toml line (\d+): ", message)
    assert match, f"no line in: {message}"
    return int(match.group(1))


def test_a_valid_file_parses_into_rules_groups_and_defaults():
    rules = parse(GOOD, "rules.toml")
    accuracy, clicks, labels, cooldown = rules.rules
    assert (accuracy.metric, accuracy.op, accuracy.threshold, accuracy.persistence) == ("online_accuracy", "<", 0.7, 3)
    assert accuracy.min_n == 300 and accuracy.line == 3
    assert accuracy.param("label_types") == ("outcome",)
    assert accuracy.param("labels_settled") == 0.5  # the metric's default
    assert clicks.window == "hour" and clicks.param("feedback_type") == "click" and clicks.persistence == 1
    assert labels.min_n == 30 and cooldown.threshold == 30.0
    assert [g.name for g in rules.groups] == ["signal_and_cooldown", "either"]
    assert rules.groups[1].members == ("signal_and_cooldown", "accuracy_drop")
    assert rules.top_level() == ["clicks", "either"]  # members of groups decide through their group


def test_the_example_rules_file_parses():
    rules = load_rules(ROOT / "rules.example.toml")
    assert {r.metric for r in rules.rules} >= {"online_accuracy", "new_labels_since_retrain", "days_since_retrain"}


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ('op = "<"\n', 'op = "below"\n', 7, "op must be one of < <= > >="),
        ("for = 3", "for = 0", 9, "'for' must be a whole number ≥ 1"),
        ("for = 3", "for = 2.5", 9, "'for' must be a whole number ≥ 1"),
        ('window = "day"', 'window = "month"', 6, "'window' must be one of hour, day, week"),
        ("min_n = 300", "min_n = -1", 10, "'min_n' must be a whole number ≥ 0"),
        ("threshold = 0.7", 'threshold = "high"', 8, "'threshold' must be a number"),
        ("threshold = 0.7", "threshold = nan", 8, "'threshold' must be a number"),
        ('label_types = ["outcome"]', 'label_types = "outcome"', 11, "'label_types' must be a list of names"),
        ('label_types = ["outcome"]', "labels_settled = 1.5", 11, "'labels_settled' must be a number in [0, 0.999]"),
        ('label_types = ["outcome"]', 'colour = "red"', 11, "unknown key 'colour' for metric online_accuracy"),
        ('metric = "online_accuracy"', 'metric = "accuracy"', 5, "unknown metric 'accuracy'"),
        ("min_n = 300", 'model_versions = "v2"', 10, "'model_versions' must be a list of names"),
    ],
)
def test_a_bad_value_is_refused_on_its_own_line(old, new, line, words):
    message = refusal(GOOD.replace(old, new, 1))
    assert line_of(message) == line, message
    assert words in message
    assert "accuracy_drop" in message  # names the rule too


def test_a_missing_required_key_names_the_rule_table_line():
    text = GOOD.replace('op = "<="\n', "")
    message = refusal(text)
    assert line_of(message) == 13 and "rule 'clicks' needs 'op'" in message


def test_a_duplicate_rule_name_is_refused_where_it_is_repeated():
    text = GOOD.replace('name = "clicks"', 'name = "accuracy_drop"')
    message = refusal(text)
    assert line_of(message) == 14 and "used by an earlier rule" in message


def test_a_key_of_another_metric_is_refused():
    text = GOOD.replace('feedback_type = "click"', 'label_types = ["outcome"]\nfeedback_type = "click"')
    text = text.replace('metric = "positive_feedback_rate"', 'metric = "prediction_volume"')
    message = refusal(text)
    assert line_of(message) == 16 and "unknown key 'label_types' for metric prediction_volume" in message


def test_a_group_with_an_unknown_member_is_refused_on_its_rules_line():
    text = GOOD.replace('rules = ["labels", "cooldown"]', 'rules = ["labels", "cooldwn"]')
    message = refusal(text)
    assert line_of(message) == 36 and "unknown member 'cooldwn'" in message


def test_a_group_may_not_refer_to_a_later_group():
    text = GOOD.replace('rules = ["labels", "cooldown"]', 'rules = ["labels", "either"]')
    assert "unknown member 'either'" in refusal(text)


def test_group_members_must_share_one_window():
    text = GOOD.replace('rules = ["labels", "cooldown"]', 'rules = ["labels", "clicks"]')
    message = refusal(text)
    assert line_of(message) == 36 and "members must share one window" in message and "clicks: hour" in message


def test_a_bad_group_mode_and_a_bad_top_level_mode_name_their_lines():
    assert line_of(refusal(GOOD.replace('mode = "all"', 'mode = "both"'))) == 35
    message = refusal(GOOD.replace('mode = "any"\n', 'mode = "some"\n', 1))
    assert line_of(message) == 1 and "top-level mode" in message


def test_invalid_toml_names_the_line_of_the_syntax_error():
    message = refusal(GOOD.replace("threshold = 0.7", "threshold = 0.7 0.8"))
    assert line_of(message) == 8 and "not valid TOML" in message


def test_an_unknown_top_level_key_and_an_empty_file_are_refused():
    assert "unknown key 'rulez'" in refusal("[[rulez]]\nname = 'a'\n")
    assert "no [[rule]] tables" in refusal("mode = 'any'\n")


def test_an_unreadable_rules_file_is_one_line(tmp_path):
    with pytest.raises(InputError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.toml")
    binary = tmp_path / "rules.toml"
    binary.write_bytes(b"\xff\xfe\x00rules")
    with pytest.raises(InputError, match="not UTF-8"):
        load_rules(binary)


def test_a_metric_declares_its_own_keys_and_they_are_checked_with_their_line():
    # How the lead's drift metric will plug in: one function, one entry with its keys.
    drift = Metric(
        "features with PSI ≥ 0.2 vs a reference window",
        lambda ctx, rule: None,
        {
            "reference": Param(date_range, required=True, help="reference days, first/last"),
            "min_features": Param(whole(1), 3),
        },
    )
    metrics = {**METRICS, "drift": drift}
    head = '[[rule]]\nname = "drift"\nmetric = "drift"\nop = ">="\nthreshold = 0.2\n'
    rules = parse_rules(head + 'reference = "2026-01-01/2026-01-31"\n', metrics, "rules.toml")
    assert rules.rules[0].param("reference") == (date(2026, 1, 1), date(2026, 1, 31))
    assert rules.rules[0].param("min_features") == 3
    with pytest.raises(InputError) as info:
        parse_rules(head + 'reference = "2026-01-31/2026-01-01"\n', metrics, "rules.toml")
    assert line_of(str(info.value)) == 6 and "date range" in str(info.value)
    with pytest.raises(InputError) as info:
        parse_rules(head + 'reference = "2026-01-01/2026-01-31"\nmin_features = 0\n', metrics, "rules.toml")
    assert line_of(str(info.value)) == 7 and "'min_features' must be a whole number ≥ 1" in str(info.value)
    with pytest.raises(InputError) as info:
        parse_rules(head, metrics, "rules.toml")
    assert line_of(str(info.value)) == 1 and "needs 'reference'" in str(info.value)
