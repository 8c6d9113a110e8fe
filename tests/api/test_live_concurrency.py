"""The real HTTP API on a live server under a mixed concurrent load (issue 12, point 1).

32 clients, each a thread with its own HTTP session, mix purchases, returns, one-step and
two-step redemptions (reserve, then confirm or cancel) on 5 members, while staff adjustments
and points expiry run through the services in threads of their own. The lock order of
``ledger.services.posting`` must keep every answer out of the 5xx range; the one 5xx allowed is
503 ``busy`` (the last line of defence, counted), which a client answers by sending the same
request again with the same Idempotency-Key. Afterwards every account reconciles with its
entries, lots, holds and pending points, and no redemption or staff debit took a balance below
zero (a return's clawback may).
"""

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.db import connection
from django.utils import timezone

from ledger import services as ledger_services
from ledger.models import Entry
from ledger.selectors import ledger_mismatches
from loyalty_site.channels import channel_create
from loyalty_site.errors import DomainError
from loyalty_site.models import SCOPES
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLIENTS = 32
MEMBERS = 5
SECONDS = 8.0
MAX_OPS_PER_CLIENT = 12
BUSY_RESENDS = 5


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks and a server taking requests at once")


class Client:
    """One till: its own session; every write has an Idempotency-Key, kept for a 503 resend."""

    def __init__(self, base: str, key: str, log: "Log"):
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Api-Key {key}"
        self.base = f"{base}/api/v1/"
        self.log = log

    def post(self, path: str, body: dict) -> requests.Response:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for _attempt in range(BUSY_RESENDS + 1):
            response = self.session.post(self.base + path, json=body, headers=headers, timeout=30)
            self.log.answer(path, response)
            if response.status_code != 503:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")) * random.random() / 4)
        return response


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = Counter()
        self.server_errors = []  # (path, status, start of body): any 5xx but 503 busy
        self.busy = 0
        self.purchases = {}  # member public id -> [(purchase id, amount)]
        self.failures = []  # exceptions in the threads

    def answer(self, path, response):
        with self.lock:
            # purchases, returns, redemptions, confirm, cancel
            kind = [part for part in path.split("/") if part and not part.isdigit()][-1]
            self.statuses[(kind, response.status_code)] += 1
            if response.status_code == 503 and _code(response) == "busy":
                self.busy += 1
            elif response.status_code >= 500:
                self.server_errors.append((path, response.status_code, response.text[:200]))


def _code(response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


def test_the_live_api_under_a_mixed_load_answers_no_server_error_and_keeps_every_balance(
    live_server,
):
    EarningRuleFactory(name="Base rate", rate=Decimal(1))
    _channel, key = channel_create(name="Till", kind="pos", scopes=list(SCOPES))
    staff = UserFactory(is_staff=True)
    members = [MemberFactory() for _ in range(MEMBERS)]
    past = timezone.now() - timedelta(days=1)
    for member in members:
        ledger_services.points_earn(member=member, points=300, reason="start")
        # Lots already past their expiry date, so that the expiry runs have work to do.
        ledger_services.points_earn(
            member=member, points=40, reason="start", at=past - timedelta(days=1), expires_at=past
        )
    member_ids = [str(m.public_id) for m in members]
    log = Log()
    counter = iter(range(10_000_000))
    deadline = time.monotonic() + SECONDS

    def buy(client, member):
        amount = random.choice(["5.00", "12.50", "40.00"])
        body = {"member": member, "external_id": f"LIVE{next(counter)}", "amount": amount}
        response = client.post("purchases/", body)
        if response.status_code == 201:
            with log.lock:
                log.purchases.setdefault(member, []).append((response.json()["id"], amount))

    def give_back(client, member):
        with log.lock:
            mine = list(log.purchases.get(member, []))
        if not mine:
            return buy(client, member)
        purchase, amount = random.choice(mine)
        half = str((Decimal(amount) / 2).quantize(Decimal("0.01")))
        client.post(f"purchases/{purchase}/returns/", {"amount": half})

    def redeem(client, member):
        client.post("redemptions/", {"member": member, "points": random.choice([5, 15, 60])})

    def reserve_then_settle(client, member):
        reserved = client.post("redemptions/", {"member": member, "points": 20, "reserve": True})
        if reserved.status_code != 201:
            return
        step = random.choice(["confirm", "cancel"])
        client.post(f"redemptions/{reserved.json()['id']}/{step}/", {})

    operations = [buy, buy, give_back, redeem, reserve_then_settle]

    def till(index):
        client = Client(live_server.url, key, log)
        try:
            for _ in range(MAX_OPS_PER_CLIENT):
                if time.monotonic() > deadline:
                    break
                random.choice(operations)(client, random.choice(member_ids))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            with log.lock:
                log.failures.append(("till", index, repr(error)))
        finally:
            client.session.close()

    def staff_desk():
        try:
            while time.monotonic() < deadline:
                # A refusal (a debit larger than the balance) is an answer, not an error.
                with contextlib.suppress(DomainError):
                    ledger_services.points_adjust(
                        member=random.choice(members),
                        points=random.choice([-30, -5, 10, 25]),
                        reason="live load",
                        actor=staff,
                    )
                time.sleep(0.02)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            log.failures.append(("staff", repr(error)))
        finally:
            connection.close()

    def expiry_job():
        try:
            while time.monotonic() < deadline:
                ledger_services.points_expire()
                time.sleep(0.2)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            log.failures.append(("expiry", repr(error)))
        finally:
            connection.close()

    threads = [threading.Thread(target=till, args=(i,)) for i in range(CLIENTS)]
    threads += [threading.Thread(target=staff_desk), threading.Thread(target=expiry_job)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"

    assert log.failures == []
    assert log.server_errors == []
    answered = sum(log.statuses.values())
    # The load really ran, every kind of request (a few hundred on an idle machine).
    assert answered >= 50, log.statuses
    done = {kind for (kind, status), _n in log.statuses.items() if status in (200, 201)}
    assert done >= {"purchases", "returns", "redemptions", "confirm", "cancel"}, log.statuses
    print(f"{answered} answers, {log.busy} busy (resent with the same key): {dict(log.statuses)}")
    assert list(ledger_mismatches()) == []
    # Invariant 2: a redemption or staff debit never takes a balance below zero.
    below_zero = Entry.objects.filter(
        kind__in=[Entry.Kind.REDEEM, Entry.Kind.ADJUST], amount__lt=0, balance_after__lt=0
    )
    assert list(below_zero.values_list("kind", "amount", "balance_after")) == []
    # Every expired lot was expired (the expiry runs had work and did it once).
    assert Entry.objects.filter(kind=Entry.Kind.EXPIRE).count() >= 1
