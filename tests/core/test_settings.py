"""Settings: defaults in code, a [section] of the settings file overrides them, bad keys name their line."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workbench.core.errors import InputError
from workbench.core.settings import load_section


@dataclass(frozen=True)
class Example:
    threshold: float = 0.1
    min_rows: int = 30
    method: str = "holm"
    groups: tuple[str, ...] = ()
    cap: float | None = None


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_SETTINGS", raising=False)
    assert load_section(Example, "example") == Example()


def test_a_section_overrides_some_defaults(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[other]\nthreshold = 9\n[example]\nthreshold = 1\ngroups = ["a", "b"]\ncap = 0.5\n')
    assert load_section(Example, "example", path) == Example(threshold=1.0, groups=("a", "b"), cap=0.5)


def test_the_environment_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text("[example]\nmin_rows = 5\n")
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(path))
    assert load_section(Example, "example").min_rows == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[example]\nthreshold = 1\nthreshhold = 2\n", "line 3: [example] has no setting 'threshhold'"),
        ("[example]\n\nmin_rows = 2.5\n", "line 3: [example] min_rows = 2.5 is not a valid"),
        ('[example]\nthreshold = "high"\n', "line 2: [example] threshold = 'high' is not a valid"),
        ("[example\n", "not valid TOML"),
    ],
)
def test_bad_settings_are_refused_naming_the_line(tmp_path, body, message):
    path = tmp_path / "s.toml"
    path.write_text(body)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        load_section(Example, "example", path)


def test_the_example_file_lists_every_setting_with_its_default():
    """settings.example.toml documents every analysis setting; loading it changes nothing."""
    import dataclasses
    import tomllib

    from tests.conftest import ROOT
    from workbench.abtest.result import ABTestSettings
    from workbench.ingest.settings import IngestSettings
    from workbench.metrics.settings import MetricsSettings
    from workbench.registry.settings import MlflowSettings
    from workbench.stats.drift import DriftSettings
    from workbench.stats.fairness import FairnessSettings
    from workbench.stream.snapshot import StreamSettings

    example = ROOT / "settings.example.toml"
    listed = tomllib.loads(example.read_text(encoding="utf-8"))
    sections = {
        "drift": DriftSettings,
        "abtest": ABTestSettings,
        "fairness": FairnessSettings,
        "stream": StreamSettings,
        "ingest": IngestSettings,
        "metrics": MetricsSettings,
        "mlflow": MlflowSettings,
    }
    assert set(listed) == set(sections)
    for section, cls in sections.items():
        assert set(listed[section]) == {f.name for f in dataclasses.fields(cls)}, section
        assert load_section(cls, section, example) == cls(), section


@pytest.mark.parametrize(("section", "text", "message"), [
    ("drift", "psi_threshold = -1", r"\[drift\] psi_threshold = -1 is outside its range 0 to ∞"),
    ("drift", "bins = -5", r"\[drift\] bins = -5 is outside its range 2 to 1000"),
    ("abtest", "alpha = 1.5", r"\[abtest\] alpha = 1.5 is outside its range 1e-12 to 0.5"),
    ("fairness", "confidence = 2", r"\[fairness\] confidence = 2 is outside its range 0.5 to 0.9999"),
])  # fmt: skip
def test_a_setting_outside_its_range_names_the_key_and_the_range(tmp_path, section, text, message):
    from workbench.abtest.result import ABTestSettings
    from workbench.stats.drift import DriftSettings
    from workbench.stats.fairness import FairnessSettings

    cls = {"drift": DriftSettings, "abtest": ABTestSettings, "fairness": FairnessSettings}[section]
    path = tmp_path / "s.toml"
    path.write_text(f"[{section}]\n{text}\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2: " + message):
        load_section(cls, section, path)


def test_every_numeric_setting_has_a_range():
    import dataclasses
    import typing

    from workbench.abtest.result import ABTestSettings
    from workbench.core.settings import RANGES
    from workbench.ingest.settings import IngestSettings
    from workbench.metrics.settings import MetricsSettings
    from workbench.registry.settings import MlflowSettings
    from workbench.stats.drift import DriftSettings
    from workbench.stats.fairness import FairnessSettings
    from workbench.stream.snapshot import StreamSettings

    for section, cls in {"drift": DriftSettings, "abtest": ABTestSettings, "fairness": FairnessSettings,
                         "stream": StreamSettings, "ingest": IngestSettings,
                         "metrics": MetricsSettings, "mlflow": MlflowSettings}.items():  # fmt: skip
        hints = typing.get_type_hints(cls)
        numeric = {f.name for f in dataclasses.fields(cls) if hints[f.name] in (int, float)}
        assert numeric == set(RANGES[section]), section
