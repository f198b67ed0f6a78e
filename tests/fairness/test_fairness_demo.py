"""Acceptance on the default demo scenario: the region with the injected higher FPR fails, the others pass."""

from __future__ import annotations

import json

import pytest

from workbench.fairness.audit import audit_store, curation_target_shares
from workbench.stats.fairness import FairnessSettings


@pytest.fixture(scope="module")
def region_audit(demo):
    store, _ = demo
    return audit_store(store, ["region"], settings=FairnessSettings(bootstrap_resamples=300))


def test_the_injected_biased_region_fails_on_fpr_and_the_others_pass(demo, region_audit):
    _, truth = demo
    biased = truth["biased_group"]
    assert (biased["attribute"], biased["metric"]) == ("region", "fpr")
    statuses = {g["group"]: g["status"] for g in region_audit.groups}
    assert statuses.pop(biased["value"]) == "fail"
    assert set(statuses.values()) <= {"pass", "reference"}
    assert region_audit.verdict == "fail"
    assert region_audit.verdict_text.startswith(f"fail: FPR for region={biased['value']} is ")
    south = region_audit.group(biased["value"])
    reference = region_audit.group(region_audit.reference_group)
    # the demo predicts positive for an extra 15% of the biased region's true negatives (those not already positive)
    expected = reference["fpr"] + biased["extra_fpr"] * (1 - reference["fpr"])
    assert south["fpr"] == pytest.approx(expected, abs=0.03)
    assert south["vs_reference"]["fpr"]["p_adjusted"] < 1e-6
    assert [f["group"] for f in region_audit.flags if f["kind"] == "disparity"] == [biased["value"]]


def test_json_is_clean_and_has_every_section(region_audit):
    document = region_audit.to_dict()
    text = json.dumps(document, allow_nan=False)
    assert "NaN" not in text
    assert document["over_time"]["chunks"] and document["representation"]["groups"]
    versions = document["versions"]
    assert versions is not None and len(versions["per_version"]) == 2
    assert {d["name"] for d in versions["disparities"]} >= {"equalized_odds_difference", "demographic_parity_ratio"}
    for group in document["groups"]:
        low, high = group["ci"]["fpr"]
        assert low <= group["fpr"] <= high


def test_intersections_name_groups_with_both_values(demo):
    store, _ = demo
    audit = audit_store(store, ["age_band", "region"], settings=FairnessSettings(bootstrap_resamples=50))
    assert len(audit.groups) == 16
    assert all(len(g["group"].split(" × ")) == 2 for g in audit.groups)
    assert {g["group"] for g in audit.groups if g["status"] == "fail"} <= {g["group"] for g in audit.groups
                                                                        if g["group"].endswith("south")}  # fmt: skip


def test_target_shares_for_curation_come_from_the_audit(region_audit):
    shares = curation_target_shares(region_audit)
    assert set(shares) == {"north", "south", "east", "west"}
    assert sum(shares.values()) == pytest.approx(1.0)
