"""The admin dashboard in a browser: the figures, then the charts drawn by uPlot, one canvas per chart."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from access import services as access
from analytics.models import UsageDay
from tests.factories import PASSWORD
from tests.helpers import fund

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHARTS = ["revenue", "durations", "dau", "requests", "top-users"]
# How many of a canvas's pixels are not transparent.
PAINTED = """c => { const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 3; i < d.length; i += 4) { if (d[i]) n++; } return n; }"""


def test_admin_dashboard_draws_its_charts(page, alice, admin_user):
    fund(alice, "100")
    token = access.token_purchase(user=alice, duration_hours=24)
    access.token_revoke(user=alice, token_id=access.token_purchase(user=alice, duration_hours=1).pk)
    yesterday = timezone.now().date() - dt.timedelta(days=1)
    UsageDay.objects.create(user=alice, token=token, date=yesterday, requests=42, bytes_in=10, bytes_out=900)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(admin_user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()

    expect(page.get_by_role("heading", name="Business at a glance")).to_be_visible()
    charts = page.get_by_test_id("dashboard-charts")
    expect(charts.get_by_role("heading", name="The last 30 days")).to_be_visible()
    for chart in CHARTS:
        canvas = page.locator(f"#zg-chart-{chart} canvas")
        expect(canvas).to_have_count(1)
        assert canvas.bounding_box()["width"] >= 240, chart
        assert canvas.evaluate(PAINTED) > 100, chart  # axes, grid and the data were drawn
    # What the charts were fed (axis labels are painted on the canvas, not text in the page).
    data = page.evaluate("JSON.parse(document.getElementById('zg-charts-data').textContent)")
    assert data["top_users"] == {"labels": ["alice"], "bytes": [910], "requests": [42]}
    assert data["durations"] == {"labels": ["1 hour", "24 hours"], "counts": [1, 1]}
    assert (data["revenue"][-1], data["refunds"][-1], data["requests"][-2]) == (19.0, 1.0, 42)
    expect(page.locator("#zg-chart-revenue .u-legend")).to_contain_text("Refunds")
    assert errors == []

    with page.expect_download() as download:
        page.get_by_test_id("dashboard-csv").click()
    path = download.value.path()
    with open(path, encoding="utf-8") as export:
        lines = export.read().splitlines()
    assert lines[0].startswith("date,revenue_znc,refunds_znc") and len(lines) == 31
    today = timezone.now().date()
    assert lines[-1].startswith(f"{today},19.00,1.00,18.00,0.00,")
    assert lines[-2].endswith(",42,910,1")
