"""A person can use the generated service's Swagger UI (/docs) in a real browser: create an item,
register, log in, authorize with the CSRF token, place an order, see who they are, log out — and
the page never asks for anything outside the service (it works offline).

Chromium is Debian's (`apt-get install chromium`, or CHROMIUM=/path/to/chromium), driven by
Playwright through `executable_path`: no browser is downloaded."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from toolkit.environment import project_env
from toolkit.processes import ServerProcess, run
from toolkit.render import render

ANSWERS = {
    "database_driver": "aiosqlite",
    "session_strategy": "transaction",
    "user_sessions": "database",
    "with_examples": True,
    "ci": "none",
    "docker": False,
}
# Milliseconds, for Playwright: one step of the page (a click, a response shown).
STEP_TIMEOUT_MS = 20_000
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"


def chromium_executable() -> str:
    """CHROMIUM if set, else `chromium` on PATH; a failure (never a skip) saying how to provide
    it otherwise."""
    named = os.environ.get("CHROMIUM")
    if named:
        found = shutil.which(named)
        if found is None:
            pytest.fail(f"CHROMIUM={named} is not an executable file", pytrace=False)
        return found
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "the browser test needs Chromium: `apt-get install chromium` (Debian's package; "
            ".ci/run installs it when missing), or set CHROMIUM=/path/to/chromium",
            pytrace=False,
        )
    return found


@contextlib.contextmanager
def served_project(tmp_path: Path) -> Iterator[str]:
    """A rendered project, installed, migrated and served on a loopback port: its base URL."""
    project = render(tmp_path / "project", ANSWERS, skip_tasks=False)
    env = project_env(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
            "ENVIRONMENT": "development",  # cookies without `Secure`, for http://127.0.0.1
        }
    )
    run(["uv", "sync"], project, env=env, timeout=300).check("uv sync")
    run(["uv", "run", "my-service", "db", "upgrade"], project, env=env, timeout=120).check(
        "my-service db upgrade"
    )
    server = ServerProcess(
        "my-service",
        ["uv", "run", "my-service", "serve", "--host", "127.0.0.1"],
        project,
        env,
        tmp_path / "server.log",
    )
    server.start("/health/ready", timeout=60)
    try:
        yield server.url
    except BaseException:
        print(f"{server.name}'s log (last lines):\n{server.log_tail()}")
        raise
    finally:
        server.stop()


class SwaggerUI:
    """The operations of the /docs page, used as a person does: expand, Try it out, fill in the
    body, Execute, read the response shown."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def operation(self, operation_id: str) -> Locator:
        block = self.page.locator(f"[id='{operation_id}']")
        expect(block).to_be_visible()
        if "is-open" not in (block.get_attribute("class") or "").split():
            block.locator(".opblock-summary").first.click()
        try_out = block.locator(".try-out__btn")
        expect(try_out).to_be_visible()
        if "cancel" not in (try_out.get_attribute("class") or "").split():
            try_out.click()
        expect(block.locator(".execute")).to_be_visible()
        return block

    def execute(self, operation_id: str, body: Any = None, *, expect_status: int) -> str:
        """Execute the operation and wait until its response is shown; the body shown."""
        block = self.operation(operation_id)
        clear = block.locator(".btn-clear")
        if clear.count():
            clear.first.click()
        live = block.locator(".responses-wrapper .live-responses-table")
        expect(live).to_have_count(0)
        if body is not None:
            block.locator("textarea.body-param__text").fill(json.dumps(body))
        block.locator(".execute").click()
        response = live.locator("tbody tr.response")
        expect(response).to_have_count(1)
        status = response.locator("td.response-col_status")
        shown = response.locator("td.response-col_description")
        expect(status, f"{operation_id}: {shown.inner_text()}").to_have_text(str(expect_status))
        body_shown = shown.locator(".highlight-code pre")
        return body_shown.inner_text() if body_shown.count() else ""

    def authorize(self, scheme: str, value: str) -> None:
        """The Authorize dialog: `value` for `scheme`, applied, dialog closed."""
        self.page.locator(".scheme-container .btn.authorize").click()
        dialog = self.page.locator(".dialog-ux .modal-ux")
        expect(dialog).to_be_visible()
        form = dialog.locator(".auth-container").filter(
            has=self.page.locator("h4 code", has_text=scheme)
        )
        expect(form).to_have_count(1)
        form.locator("input[type=text]").fill(value)
        form.get_by_role("button", name="Apply credentials").click()
        # Applied: the form says so, hides the value and offers to remove it instead.
        expect(form.locator("h6")).to_have_text("Authorized")
        expect(form.get_by_role("button", name="Remove authorization")).to_be_visible()
        dialog.locator("button.close-modal").click()
        expect(dialog).to_have_count(0)


def test_swagger_ui_login_order_logout(tmp_path: Path) -> None:
    chromium = chromium_executable()  # before anything is rendered
    with served_project(tmp_path) as service, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox"], headless=True
        )
        try:
            context = browser.new_context()
            context.set_default_timeout(STEP_TIMEOUT_MS)
            expect.set_options(timeout=STEP_TIMEOUT_MS)
            requested: list[str] = []
            context.on("request", lambda request: requested.append(request.url))
            page = context.new_page()
            page.goto(f"{service}/docs")
            expect(page.locator(".swagger-ui .info .title")).to_be_visible()
            docs = SwaggerUI(page)

            item = json.loads(
                docs.execute(
                    "operations-items-create_item_items_post",
                    {"name": "Teapot", "price_cents": 1250, "stock": 3},
                    expect_status=201,
                )
            )
            docs.execute(
                "operations-auth-register_auth_register_post",
                {"email": EMAIL, "password": PASSWORD, "display_name": "Ada"},
                expect_status=201,
            )
            login = json.loads(
                docs.execute(
                    "operations-auth-login_auth_login_post",
                    {"email": EMAIL, "password": PASSWORD},
                    expect_status=200,
                )
            )
            session_cookies = [c for c in context.cookies(service) if c.get("httpOnly")]
            assert session_cookies, f"login set no HttpOnly cookie: {context.cookies(service)}"
            docs.authorize("CSRFToken", login["csrf_token"])

            order = json.loads(
                docs.execute(
                    "operations-orders-place_order_orders_post",
                    {"item_id": item["id"], "quantity": 2},
                    expect_status=201,
                )
            )
            assert order["item_id"] == item["id"]
            assert order["quantity"] == 2
            assert order["total_cents"] == 2 * 1250
            me = json.loads(docs.execute("operations-auth-me_auth_me_get", expect_status=200))
            assert me["email"] == EMAIL
            docs.execute("operations-auth-logout_auth_logout_post", expect_status=204)
            docs.execute("operations-auth-me_auth_me_get", expect_status=401)
        finally:
            browser.close()

    assert requested, "the page made no requests at all"
    outside = [url for url in requested if not url.startswith(f"{service}/")]
    assert not outside, f"/docs asked for something outside the service: {outside}"
