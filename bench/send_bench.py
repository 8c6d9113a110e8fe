"""Benchmark: a campaign send, planned and enqueued, then delivered through the logging backend.

    BENCH_DATABASE_URL=... .venv/bin/python bench/send_bench.py [--deliver 2000]

Plans an SMS campaign to every active member of the bench database (one INSERT … SELECT with
the control-group bucket in SQL), hands the due ids out in chunk tasks (the fan-out's body,
with `delay` counting instead of a broker, and once through the configured broker), then times
`messages_send` (the delivery task's body) over a batch of `--deliver` members who consented,
in this process: one worker's rate. The campaign is left paused, so no real worker sends it.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import figures  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loyalty_bench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from campaigns import services, tasks  # noqa: E402
from campaigns.models import Campaign, CampaignMessage, MessageTemplate  # noqa: E402
from campaigns.services import segment_snapshot_take  # noqa: E402
from members.models import Consent, Member  # noqa: E402
from members.services import consent_grant  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliver", type=int, default=2000)
    args = parser.parse_args()
    members = Member.objects.filter(status=Member.Status.ACTIVE).count()
    began = time.monotonic()
    snapshot = segment_snapshot_take(definition={"all": []})
    frozen = time.monotonic() - began
    campaign = Campaign.objects.create(
        name=f"Bench send {timezone.now():%H%M%S}",
        kind=Campaign.Kind.MESSAGE,
        status=Campaign.Status.ACTIVE,
        starts_at=timezone.now(),
        control_basis_points=1000,
        frequency_capped=False,
        audience=snapshot,
    )
    MessageTemplate.objects.create(
        campaign=campaign,
        channel="sms",
        language="en",
        subject="News",
        body="Hello {{ first_name }}",
    )
    began = time.monotonic()
    planned = services.campaign_send_start(campaign=campaign, fan_out=False)
    plan = time.monotonic() - began

    chunks = []
    delay = tasks.messages_send_chunk.delay
    tasks.messages_send_chunk.delay = lambda ids, now: chunks.append(len(ids))
    began = time.monotonic()
    tasks.messages_fan_out(campaign.pk)
    fan_out = time.monotonic() - began
    tasks.messages_send_chunk.delay = delay
    figures.report(
        f"campaign send to {members:,} members: audience frozen, messages planned and enqueued",
        frozen + plan + fan_out,
        "s",
        goal=300,
        note=f"frozen in {frozen:.1f} s; {planned:,} messages planned in {plan:.1f} s;"
        f" {len(chunks)} chunk tasks of {settings.LOYALTY_JOB_CHUNK_SIZE} handed out in"
        f" {fan_out:.1f} s (delay counted, no broker)",
    )

    # One worker's delivery rate: a batch of consenting members, through the logging backend.
    settings.LOYALTY_SMS_BACKEND = "campaigns.backends.LoggingSmsBackend"
    batch = list(
        CampaignMessage.objects.filter(campaign=campaign, status=CampaignMessage.Status.PLANNED)
        .order_by("pk")
        .values_list("pk", "member_id")[: args.deliver]
    )
    for _, member_id in batch:
        if not Consent.objects.filter(member_id=member_id, purpose=Consent.Purpose.SMS).exists():
            consent_grant(member=Member.objects.get(pk=member_id), purpose=Consent.Purpose.SMS,
                          channel="app")  # fmt: skip
    for _, member_id in batch:
        Member.objects.filter(pk=member_id, phone="").update(phone=f"+3169{member_id:07d}")
    cpu, began = time.process_time(), time.monotonic()
    outcomes = services.messages_send(message_ids=[pk for pk, _ in batch]).outcomes
    seconds, cpu = time.monotonic() - began, time.process_time() - cpu
    figures.report(
        "campaign delivery through the logging SMS backend, messages/s per worker",
        len(batch) / seconds,
        "msg/s",
        note=f"{len(batch)} messages in {seconds:.1f} s, {cpu * 1000 / len(batch):.1f} ms CPU"
        f" each; {dict(outcomes)}",
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)


if __name__ == "__main__":
    main()
