"""Registry facts on the pages: for each model version a page names, its registered version in MLflow, aliases,
creation time, source run and that run's logged metrics; and the champion/challenger defaults from the aliases.

Nothing shows and nothing is imported from MLflow when it is off (no ``[mlflow] tracking_uri`` and no
``$MLFLOW_TRACKING_URI``) or no ``registered_model`` is named. A registry that cannot be read is one warning line
in its own section; the rest of the page renders.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from workbench.app import ui
from workbench.core.errors import WorkbenchError
from workbench.registry.client import VersionFacts, model_versions, names_by_alias
from workbench.registry.settings import MlflowSettings, mlflow_settings

FACTS_TTL_SECONDS = 30  # the registry changes outside the workbench (an alias moved): re-read it this often


@st.cache_data(ttl=FACTS_TTL_SECONDS, show_spinner="Reading the model registry…", max_entries=16)
def cached_facts(settings: MlflowSettings, names: tuple[str, ...]) -> tuple[dict[str, VersionFacts | None], str]:
    """:func:`workbench.registry.client.model_versions` and the failure's line (empty when none), cached for a few
    seconds per settings and names: a registry that is down is asked again after the TTL, not on every rerun."""
    try:
        return model_versions(settings, list(names)), ""
    except WorkbenchError as exc:
        return {}, str(exc)


def facts(names: list[str], quiet: bool = False) -> tuple[MlflowSettings | None, dict[str, VersionFacts | None]]:
    """The settings and each name's facts; ``(None, {})`` when MLflow is off, no model is named or it failed (the
    failure shown as one warning line, unless ``quiet``: the facts table says it, the defaults keep silent)."""
    try:
        settings = mlflow_settings()
    except WorkbenchError as exc:  # a bad [mlflow] section
        failure = str(exc)
        settings = None
    else:
        if settings is None or not settings.has_model or not names:
            return None, {}
        found, failure = cached_facts(settings, tuple(names))
    if failure:
        if not quiet:
            st.warning(f"Model registry: {failure}", icon=":material/cloud_off:")
        return None, {}
    return settings, found


def store_versions() -> list[str]:
    """The model versions of the active store under the active window (what the pages offer to pick)."""
    return [v["model_version"] for v in ui.summary().model_versions]


def render_facts(names: list[str]) -> None:
    """A "Model registry" table: one row per version text with its registered version's facts (nothing when
    MLflow is off)."""
    settings, found = facts(names)
    if settings is None:
        return
    rows = [facts_row(name, fact) for name, fact in found.items()]
    st.markdown(f"**Model registry** · `{settings.registered_model}` at `{settings.tracking_uri}`")
    ui.table(rows)
    st.caption(f"A prediction's model version matches a registered version by {rule_text(settings)}.")


def facts_row(name: str, fact: VersionFacts | None) -> dict[str, Any]:
    """One table row: the page's version text and its registered version's facts (dashes when none matches)."""
    if fact is None:
        return {"model version": name, "registered version": "not registered", "aliases": ui.MISSING,
                "created (UTC)": ui.MISSING, "source run": ui.MISSING, "run metrics": ui.MISSING}  # fmt: skip
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(fact.metrics.items())) or ui.MISSING
    return {
        "model version": name,
        "registered version": fact.version,
        "aliases": ", ".join(fact.aliases) or ui.MISSING,
        "created (UTC)": fact.created_at.strftime("%Y-%m-%d %H:%M"),
        "source run": fact.run_id or ui.MISSING,
        "run metrics": metrics,
    }


def rule_text(settings: MlflowSettings) -> str:
    """The matching rule in words."""
    if settings.match == "tag":
        return f"the version's tag `{settings.match_tag}`"
    if settings.match == "alias":
        return "alias (the prediction names an alias such as champion)"
    return "number (`v2` is version 2)"


def alias_names(names: list[str]) -> dict[str, str]:
    """``{"champion": name, "challenger": name}`` for the aliases found among ``names`` (empty when MLflow is off)."""
    settings, found = facts(names, quiet=True)
    if settings is None:
        return {}
    by_alias = names_by_alias(found)
    roles = {"champion": settings.champion_alias, "challenger": settings.challenger_alias}
    return {role: by_alias[alias] for role, alias in roles.items() if alias in by_alias}


def preset_versions(champion_key: str, challenger_key: str, names: list[str]) -> None:
    """Default two version pickers (their session-state keys) to the champion and challenger aliases, once: a
    reviewer's own pick is never overwritten."""
    preset_version(champion_key, "champion", names)
    preset_version(challenger_key, "challenger", names)


def preset_version(key: str, role: str, names: list[str]) -> None:
    """Default one version picker (its session-state key) to the version of ``role`` (champion or challenger)."""
    defaults = alias_names(names)
    if key not in st.session_state and role in defaults:
        st.session_state[key] = defaults[role]


def champion_control(options: dict[str, Any]) -> dict[str, Any]:
    """The A/B options with the control arm defaulting to the champion alias's version when the settings name no
    control (the A/B page picks it when that version is one of the arms)."""
    settings = options.get("settings")
    if settings is None or getattr(settings, "control", "x") or not ui.active_store().exists():
        return options
    champion = alias_names(store_versions()).get("champion")
    return {**options, "settings": replace(settings, control=champion)} if champion else options
