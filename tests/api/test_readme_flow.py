"""The README's "Enrol, buy, redeem" flow, copied as written, works against a live server on a
new install (issue 12, point 18): it captures the ids it needs and makes its own keys."""

import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.selectors import balance_summary
from loyalty_site.channels import channel_create
from loyalty_site.models import SCOPES
from members.models import Member
from tests.campaigns.factories import EarningRuleFactory

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_flow() -> str:
    """The indented shell block that follows the "Enrol, buy, redeem" paragraph."""
    text = README.read_text()
    start = text.index("**Enrol, buy, redeem**")
    lines = text[start:].splitlines()[1:]
    block = []
    for line in lines:
        if line.startswith("    ") or (not line.strip() and not block):
            block.append(line[4:])
        elif block:
            break
    return "\n".join(block).strip()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.django_db(transaction=True)
def test_the_readme_flow_enrols_buys_and_redeems(live_server):
    # The demo data's rules, which the README's figures come from.
    EarningRuleFactory(name="Base rate: 1 point per euro", rate=Decimal(1))
    EarningRuleFactory(
        name="Double points on coffee", kind="multiplier", multiplier=2, categories=["coffee"]
    )
    _channel, key = channel_create(name="Webshop", kind="webshop", scopes=list(SCOPES))
    script = readme_flow().replace("http://127.0.0.1:8000", live_server.url)
    assert "$MEMBER" in script and "$CARD" in script  # nothing hard-coded
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    member = Member.objects.get(email__regex=r"^anna\.\d+@example\.nl$")
    assert re.search(r'"points_earned":\s*50', result.stdout)
    assert balance_summary(member=member)["balance"] == 40
    assert member.redemptions.get().points == 10
