"""Registered model versions as the pages show them: the matching rules, the facts read back against MLflow's own
client, the aliases as champion/challenger defaults, and MLflow staying off (and unimported) without a URI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.registry.seed import ALIASES, METRICS, MODEL
from workbench.core.errors import InputError
from workbench.core.settings import load_section
from workbench.registry.client import RegistryError, model_versions, names_by_alias
from workbench.registry.settings import MlflowSettings, mlflow_settings, version_number


def test_the_number_rule_reads_v2_as_version_2_and_refuses_ambiguous_texts():
    assert [version_number(t) for t in ("v2", "2", "v007", "model-v12")] == ["2", "2", "7", "12"]
    assert [version_number(t) for t in ("champion", "v1.2", "")] == [None, None, None]


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["v", "V", "version-", "model_v", ""]))
def test_the_number_rule_finds_the_number_whatever_the_prefix(number, prefix):
    assert version_number(f"{prefix}{number}") == str(number)


def test_facts_of_the_demo_versions_match_what_mlflow_holds(settings, client):
    facts = model_versions(settings, ["v1", "v2", "v9"])
    assert facts["v9"] is None  # no version 9 registered
    for name, number in (("v1", "1"), ("v2", "2")):
        fact, truth = facts[name], client.get_model_version(MODEL, number)
        assert (fact.model, fact.version, fact.run_id) == (MODEL, number, truth.run_id)
        assert fact.aliases == tuple(a for a, v in ALIASES.items() if v == number)
        assert fact.metrics == pytest.approx(METRICS[number], abs=1e-12)
        assert fact.metrics == client.get_run(truth.run_id).data.metrics
        assert fact.created_at == datetime.fromtimestamp(truth.creation_timestamp / 1000, UTC)
        assert abs(datetime.now(UTC) - fact.created_at) < timedelta(days=1)
    assert names_by_alias(facts) == {"champion": "v1", "challenger": "v2"}


def test_facts_do_not_depend_on_the_order_of_the_names(settings):
    forward, backward = model_versions(settings, ["v1", "v2"]), model_versions(settings, ["v2", "v1"])
    assert forward == backward


def test_the_tag_rule_matches_a_version_by_its_tag(settings, client):
    client.set_model_version_tag(MODEL, "2", "model_version", "candidate-a")
    facts = model_versions(dataclasses.replace(settings, match="tag"), ["candidate-a", "v1"])
    assert facts["candidate-a"].version == "2" and facts["v1"] is None


def test_the_alias_rule_matches_predictions_that_name_an_alias(settings):
    facts = model_versions(dataclasses.replace(settings, match="alias"), ["champion", "challenger", "shadow"])
    assert (facts["champion"].version, facts["challenger"].version, facts["shadow"]) == ("1", "2", None)


def test_an_unknown_registered_model_is_one_line(settings):
    with pytest.raises(RegistryError, match="reading the registered model 'nope' failed") as caught:
        model_versions(dataclasses.replace(settings, registered_model="nope"), ["v1"])
    assert "\n" not in str(caught.value)


def test_mlflow_is_off_without_a_uri_and_on_with_the_environment_variable(monkeypatch, tmp_path):
    assert mlflow_settings() is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert mlflow_settings() == MlflowSettings(tracking_uri="sqlite:///x.db")
    path = tmp_path / "settings.toml"
    path.write_text('[mlflow]\ntracking_uri = "http://127.0.0.1:5000"\nregistered_model = "m"\nmatch = "tag"\n')
    assert mlflow_settings(path) == MlflowSettings(tracking_uri="http://127.0.0.1:5000", registered_model="m",
                                                   match="tag")  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [("timeout_seconds = 0", "outside its range 1 to 600"), ('match = "name"', "is not a valid"),
     ("retries = 50", "outside its range 0 to 10")],
)  # fmt: skip
def test_bad_mlflow_settings_are_refused_with_their_line(tmp_path, line, message):
    path = tmp_path / "settings.toml"
    path.write_text(f"[mlflow]\n{line}\n")
    with pytest.raises(InputError, match=f"line 2: \\[mlflow\\] .*{message}"):
        mlflow_settings(path)


def test_the_example_settings_list_every_mlflow_setting_with_its_default():
    assert load_section(MlflowSettings, "mlflow", ROOT / "settings.example.toml") == MlflowSettings()


def test_the_cli_does_not_import_mlflow():
    code = "import sys, workbench.cli; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_version_whose_run_was_deleted_keeps_its_facts_without_metrics(settings, client):
    run_id = client.get_model_version(MODEL, "1").run_id
    client.delete_run(run_id)
    client._tracking_client.store._hard_delete_run(run_id)  # as `mlflow gc` does
    facts = model_versions(settings, ["v1", "v2"])
    assert (facts["v1"].version, facts["v1"].run_id, facts["v1"].metrics) == ("1", run_id, {})
    assert facts["v2"].metrics == METRICS["2"]
