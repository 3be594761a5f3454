"""The login page and a role's landing page in real headless Chromium (shared browser fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.core.views import landing_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"


def test_sign_in_lands_on_the_role_page_and_sign_out_returns_to_login(
    chromium_browser, live_server, make_user
) -> None:
    make_user("supervisor", username="sue", first_name="Sue")
    context = chromium_browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/")
        assert page.url == f"{live_server.url}/accounts/login/?next=/"
        page.fill("#id_username", "sue")
        page.fill("#id_password", "pw")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert page.url == f"{live_server.url}{landing_url('supervisor')}"
        if landing_url("supervisor") == "/home/supervisor/":
            assert page.locator("h1").inner_text() == "Grading queue"
        assert page.locator(".who .user").inner_text() == "Sue"
        assert page.locator(".who .badge").inner_text() == "Supervisor"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "core-supervisor-landing.png"))
        page.click("text=Sign out")
        page.wait_for_load_state()
        assert page.url == f"{live_server.url}/accounts/login/"
        assert page.locator("h1").inner_text() == "Sign in"
    finally:
        context.close()
