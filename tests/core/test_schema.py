"""Roles files: the mapping from a user's column names to the workbench's roles."""

import pytest

from workbench.core.errors import InputError
from workbench.core.schema import Roles, parse_roles

ROLES_TOML = """
[predictions]
trace_id = "request_id"
ts = "created_at"
model_version = "model"
prediction = "pred"
score = "proba"
arm = "variant"
unit_id = "user_id"
features = ["amount", "tenure_days", "country"]
categorical = ["country"]
sensitive = ["age_band", "region"]
[feedback]
trace_id = "request_id"
ts = "at"
kind = "kind"
type = "type"
value = "value"
label = "label"
"""


def test_roles_file_maps_every_role_to_the_users_column():
    roles = parse_roles(ROLES_TOML)
    assert roles.predictions.source_column("trace_id") == "request_id"
    assert roles.predictions.source_column("score") == "proba"
    assert roles.predictions.features == ["amount", "tenure_days", "country"]
    assert roles.predictions.categorical == ["country"]
    assert roles.predictions.sensitive == ["age_band", "region"]
    assert roles.feedback.source_column("ts") == "at"


def test_unmapped_roles_keep_their_canonical_names():
    roles = Roles()
    assert roles.predictions.source_column("prediction") == "prediction"
    assert roles.feedback.source_column("kind") == "kind"


def test_roles_round_trip_through_a_dict():
    roles = parse_roles(ROLES_TOML)
    assert Roles.from_dict(roles.to_dict()) == roles


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[predictions]\nscroe = 'p'", "unknown role 'scroe'"),
        ("[predictons]\nscore = 'p'", "unknown section [predictons]"),
        ("[predictions]\nfeatures = 'amount'", "features must be a list"),
        ("[predictions]\nscore = 3", "score must be a column name"),
        ("[predictions\nscore = 'p'", "not valid TOML"),
    ],
)
def test_bad_roles_files_are_refused_with_a_message(text, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_roles(text)
