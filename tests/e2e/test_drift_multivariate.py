"""Browser walk of the Drift page's multivariate section (issue 20): verdict in words, the PCA reconstruction
error with its band, the features' and pairs' parts, the top pair's 2-D density difference."""

import pytest

from tests.e2e.conftest import ARTIFACTS, wait_for_app, wait_for_charts

pytestmark = pytest.mark.e2e


def test_drift_page_explains_the_multivariate_drift(page, app_url):
    page.goto(f"{app_url}/drift")
    wait_for_app(page, timeout_ms=120_000)
    assert page.locator("[data-testid=stException]").count() == 0
    wait_for_charts(page, at_least=8)  # PSI, distribution, PCA error, classifier, parts, density, heatmap, lines…
    body = page.inner_text("[data-testid=stMain]")
    assert "Multivariate drift" in body
    assert "multivariate drift: yes — the PCA reconstruction error left its band" in body
    assert "PCA fitted on a seeded sample of 5,000 reference rows" in body
    assert "(reference mean ± 3σ) in 2 of 2 current chunks" in body and "of the +" in body
    for title in ("PCA reconstruction error per week", ": its parts",
                  "amount × latency_ms: share of rows, current − reference"):  # fmt: skip
        assert page.locator(".gtitle", has_text=title).count() == 1, title
    assert page.locator(".js-plotly-plot .shapelayer path").count() >= 2  # the band's upper and lower lines
    page.get_by_role("heading", name="Multivariate drift").scroll_into_view_if_needed()
    page.set_viewport_size({"width": 1400, "height": 1900})
    page.get_by_role("heading", name="Multivariate drift").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "drift_multivariate.png"))
