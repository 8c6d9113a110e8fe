"""Screenshots of the back office's main pages from the demo data: `make screenshots`.

Builds the demo programme in a temporary folder (the embedded mode: SQLite), serves it, signs in
as each demo role in Debian's Chromium (Playwright, no browser download) and saves one PNG per
page in docs/screenshots/ (English; the pages marked so also in Dutch). The README shows them.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "loyalty-demo"

# (file name, demo login, page: a path or a function of the demo data giving one, in Dutch too)
PAGES = [
    ("dashboard-marketing", "marketing", "/", True),
    ("dashboard-finance", "finance", "/", False),
    ("member-search", "service", "/members/?q=a", False),
    ("member-page", "service", lambda ids: f"/members/{ids['member']}/", True),
    ("approvals", "finance", "/approvals/", False),
    ("reviews", "service", "/reviews/", False),
    ("moderation", "service", "/moderation/", False),
    ("rules", "marketing", "/rules/", False),
    ("rule-editor", "marketing", lambda ids: f"/rules/{ids['rule']}/", True),
    ("segments", "marketing", "/segments/", False),
    ("segment-builder", "marketing", lambda ids: f"/segments/{ids['segment']}/", True),
    ("campaigns", "marketing", "/campaigns/", False),
    ("campaign-builder", "marketing", lambda ids: f"/campaigns/{ids['campaign']}/", False),
    ("campaign-results", "marketing", lambda ids: f"/campaigns/{ids['campaign']}/results/", True),
    ("rewards", "marketing", "/rewards/", False),
    ("challenges", "marketing", "/challenges/", False),
    ("audit-log", "admin", "/audit/", False),
    ("exports", "service", "/exports/", False),
    ("finance", "finance", "/finance/", True),
    ("tiers", "marketing", "/tiers/", False),
    ("ledger", "finance", "/ledger/", False),
    ("shipping", "service", "/shipping/", True),
    ("redemptions", "service", "/redemptions/", False),
]

DEMO_IDS = """
import json
from campaigns.models import Campaign, CampaignResult, EarningRule, Segment
from ledger.models import Entry
entry = Entry.objects.filter(account__member__isnull=False).order_by("-id").first()
result = CampaignResult.objects.order_by("-id").first()
print(json.dumps({
    "member": entry.account.member_id,
    "rule": EarningRule.objects.order_by("id").first().pk,
    "segment": Segment.objects.order_by("id").first().pk,
    "campaign": result.campaign_id if result else Campaign.objects.order_by("id").first().pk,
}))
"""


def manage(env, *args, capture=False):
    run = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return run.stdout


def main() -> int:
    from playwright.sync_api import sync_playwright

    var = Path(tempfile.mkdtemp(prefix="loyalty-shots-"))
    env = {**os.environ, "LOYALTY_VAR_DIR": str(var), "DEBUG": "true"}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    for step in (
        ["migrate", "--noinput", "-v", "0"],
        ["setup_roles"],
        ["setup_schedules"],
        ["demo_data"],
    ):
        manage(env, *step)
    import json

    ids = json.loads(manage(env, "shell", "-v", "0", "-c", DEMO_IDS, capture=True).splitlines()[-1])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT, env=env
    )
    try:
        for _ in range(100):
            try:
                urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            for name, login, page_path, dutch in PAGES:
                path = page_path(ids) if callable(page_path) else page_path
                for language in ("en", "nl") if dutch else ("en",):
                    context = browser.new_context(viewport={"width": 1366, "height": 900})
                    context.add_cookies(
                        [{"name": "django_language", "value": language, "url": base}]
                    )
                    page = context.new_page()
                    page.goto(base + "/login/")
                    page.fill("#id_username", login)
                    page.fill("#id_password", PASSWORD)
                    page.click("button[type=submit]")
                    page.wait_for_load_state("networkidle")
                    response = page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    if response is None or response.status != 200:
                        print(f"{name}: {path} answered {response and response.status}")
                        return 1
                    suffix = "" if language == "en" else f"-{language}"
                    target = OUT / f"{name}{suffix}.png"
                    page.screenshot(path=str(target), full_page=False)
                    print(f"{target.relative_to(ROOT)}  ({login} {path})")
                    context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
