"""Campaign sends: consent at send time, frequency caps, the control group, and exactly once
under a send run twice, a chunk retried and a worker lost mid-chunk (invariant 6)."""

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns import backends, control, tasks
from campaigns.backends import DeliveryRefused, RecordingBackend
from campaigns.errors import CampaignNotSendable, MessageTemplateMissing
from campaigns.models import Campaign, CampaignMessage, FrequencyCap
from campaigns.services import campaign_send_start, messages_due, messages_send
from campaigns.services.sends import _Chunk, _claim
from ledger.services import points_earn
from members.models import Consent, Member
from members.services import consent_withdraw
from tests.campaigns.sending import member_with, message_campaign
from tests.ledger.concurrency import run_together

Status = CampaignMessage.Status


@pytest.fixture(autouse=True)
def _recording_backends(settings, monkeypatch):
    settings.LOYALTY_SMS_BACKEND = "campaigns.backends.RecordingBackend"
    settings.LOYALTY_PUSH_BACKEND = "campaigns.backends.RecordingBackend"
    RecordingBackend.reset()
    # Message ids repeat across tests (rolled back sequences on SQLite): a fresh record each.
    monkeypatch.setattr(backends.EmailBackend, "record", backends._SentRecord())
    yield
    RecordingBackend.reset()


@pytest.fixture
def no_caps(db):
    # The data migration's defaults (3 e-mails / 7 days, 1 SMS / day) are set per test.
    FrequencyCap.objects.all().delete()


def send_all(campaign) -> Counter:
    return messages_send(message_ids=messages_due(campaign=campaign)).outcomes


def statuses(campaign) -> dict:
    return {
        m.member_id: (m.status, m.suppression)
        for m in CampaignMessage.objects.filter(campaign=campaign)
    }


def sent_ids() -> Counter:
    return Counter(call[0] for call in RecordingBackend.calls)


@pytest.mark.django_db
def test_a_send_reaches_each_consenting_member_once_and_records_why_not_the_others(no_caps):
    anna = member_with("sms", first_name="Anna")
    points_earn(member=anna, points=120)
    silent = member_with()  # no consent
    phoneless = member_with("sms", phone=False)
    campaign = message_campaign()

    assert campaign_send_start(campaign=campaign, fan_out=False) == 3
    assert send_all(campaign) == Counter(sent=1, suppressed=2)

    assert statuses(campaign) == {
        anna.pk: ("sent", ""),
        silent.pk: ("suppressed", "no_consent"),
        phoneless.pk: ("suppressed", "unreachable"),
    }
    [(message_id, to, _subject, body)] = RecordingBackend.calls
    assert to == str(anna.phone)
    assert body == "Hello Anna, you have 120 points."
    message = CampaignMessage.objects.get(member=anna)
    assert message_id == f"loyalty-message-{message.pk}"
    assert message.provider_id == f"test-{message_id}" and message.sent_at and message.attempts == 1


@pytest.mark.django_db
def test_consent_withdrawn_after_planning_suppresses_the_message_at_send_time(no_caps):
    anna = member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    consent_withdraw(member=anna, purpose=Consent.Purpose.SMS, channel="app")

    send_all(campaign)

    assert statuses(campaign) == {anna.pk: ("suppressed", "no_consent")}
    assert RecordingBackend.calls == []


@pytest.mark.django_db
def test_a_member_blocked_after_planning_is_unreachable(no_caps):
    anna = member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    Member.objects.filter(pk=anna.pk).update(status=Member.Status.BLOCKED)
    send_all(campaign)
    assert statuses(campaign) == {anna.pk: ("suppressed", "unreachable")}


@pytest.mark.django_db
def test_the_control_group_is_recorded_and_never_contacted(no_caps):
    members = [member_with("sms") for _ in range(40)]
    campaign = message_campaign(control=5000)
    held_out = {m.pk for m in members if control.bucket(m.pk, campaign.salt) < 5000}
    assert 0 < len(held_out) < 40

    campaign_send_start(campaign=campaign, fan_out=False)
    send_all(campaign)
    call_command("campaign_send", campaign.pk, "--no-progress", stdout=StringIO())

    result = statuses(campaign)
    assert {pk for pk, s in result.items() if s == ("suppressed", "control")} == held_out
    assert {pk for pk, s in result.items() if s == ("sent", "")} == {
        m.pk for m in members
    } - held_out
    phones = {str(m.phone) for m in members if m.pk in held_out}
    assert not phones & {call[1] for call in RecordingBackend.calls}
    assert len(RecordingBackend.calls) == 40 - len(held_out)


@pytest.mark.django_db
def test_the_strictest_of_several_caps_wins_and_service_messages_are_not_capped(no_caps):
    FrequencyCap.objects.create(channel="email", max_messages=3, period=7, unit="days")
    FrequencyCap.objects.create(channel="", max_messages=1, period=20, unit="hours")
    anna = member_with("email", "sms")

    first = message_campaign(channels=("email",), name="First")
    campaign_send_start(campaign=first, fan_out=False)
    assert send_all(first) == Counter(sent=1)
    # E-mail allows 3 a week, but every channel together only 1 in 20 hours: capped.
    second = message_campaign(channels=("email", "sms"), name="Second")
    campaign_send_start(campaign=second, fan_out=False)
    assert send_all(second) == Counter(suppressed=2)
    assert set(statuses(second).values()) == {("suppressed", "capped")}
    # A service message is not capped, and does not count against the caps.
    service = message_campaign(channels=("sms",), name="Service", capped=False)
    campaign_send_start(campaign=service, fan_out=False)
    assert send_all(service) == Counter(sent=1)

    # 21 hours later the hourly rule has room again, the weekly one still counts the first.
    CampaignMessage.objects.filter(campaign=first).update(
        claimed_at=timezone.now() - timedelta(hours=21)
    )
    third = message_campaign(channels=("email",), name="Third")
    campaign_send_start(campaign=third, fan_out=False)
    assert send_all(third) == Counter(sent=1)
    FrequencyCap.objects.filter(channel="email").update(max_messages=2)
    fourth = message_campaign(channels=("email",), name="Fourth")
    CampaignMessage.objects.filter(campaign=third).update(
        claimed_at=timezone.now() - timedelta(hours=21)
    )
    campaign_send_start(campaign=fourth, fan_out=False)
    assert statuses(fourth) == {anna.pk: ("planned", "")}
    assert send_all(fourth) == Counter(suppressed=1)
    assert statuses(fourth) == {anna.pk: ("suppressed", "capped")}


@pytest.mark.django_db(transaction=True)
def test_two_campaigns_sending_at_once_cannot_both_take_a_members_last_slot():
    FrequencyCap.objects.all().delete()
    FrequencyCap.objects.create(channel="sms", max_messages=1, period=1, unit="days")
    members = [member_with("sms") for _ in range(6)]
    spring = message_campaign(name="Spring")
    summer = message_campaign(name="Summer")
    for campaign in (spring, summer):
        campaign_send_start(campaign=campaign, fan_out=False)

    results = run_together(lambda: send_all(spring), lambda: send_all(summer))

    assert all(isinstance(r, Counter) for r in results), results
    for member in members:
        got = CampaignMessage.objects.filter(member=member).values_list("status", "suppression")
        assert sorted(got) == [("sent", ""), ("suppressed", "capped")]
    assert len(RecordingBackend.calls) == len(members)


@pytest.mark.django_db
def test_a_send_run_twice_plans_and_delivers_once(no_caps, django_capture_on_commit_callbacks):
    members = [member_with("sms") for _ in range(5)]
    campaign = message_campaign()

    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_send_start(campaign=campaign) == 5
    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_send_start(campaign=campaign) == 0
    out = StringIO()
    call_command("campaign_send", campaign.pk, "--no-progress", stdout=out)
    call_command("campaign_send", campaign.pk, "--no-progress", stdout=out)

    assert CampaignMessage.objects.filter(campaign=campaign).count() == 5
    assert set(sent_ids().values()) == {1} and len(sent_ids()) == len(members)
    assert "planned 0 now" in out.getvalue() and "sent 5" in out.getvalue()


@pytest.mark.django_db
def test_the_database_refuses_a_second_message_for_a_campaign_member_and_channel(no_caps):
    anna = member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignMessage.objects.create(campaign=campaign, member=anna, channel="sms")


@pytest.mark.django_db
def test_a_chunk_retried_delivers_once(no_caps):
    for _ in range(4):
        member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    chunk = messages_due(campaign=campaign)

    tasks.messages_send_chunk(chunk)
    assert tasks.messages_send_chunk(chunk) == {"done": 4}

    assert sorted(sent_ids().values()) == [1, 1, 1, 1]


@pytest.mark.django_db(transaction=True)
def test_a_chunk_delivered_to_two_workers_at_once_delivers_once():
    FrequencyCap.objects.all().delete()
    for _ in range(12):
        member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    chunk = messages_due(campaign=campaign)

    results = run_together(*(lambda: messages_send(message_ids=chunk).outcomes,) * 3)

    assert all(isinstance(r, Counter) for r in results), results
    assert sum(r["sent"] for r in results) == 12
    assert len(RecordingBackend.calls) == 12 and set(sent_ids().values()) == {1}
    assert set(statuses(campaign).values()) == {("sent", "")}


@pytest.mark.django_db
def test_a_worker_killed_mid_chunk_delivers_each_message_once_after_its_lease(no_caps):
    for _ in range(6):
        member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    chunk = messages_due(campaign=campaign)
    # The lost worker: claimed every message, handed half of them to the backend, then died
    # before recording anything.
    backend = RecordingBackend()
    claimed = [_claim(message_id, _Chunk()) for message_id in chunk]
    for message in claimed[:3]:
        backend.send(message.idempotency_key, str(message.member.phone), "News", "Hello")
    assert set(statuses(campaign).values()) == {("sending", "")}

    # Redelivered at once: the leases are live, so the chunk leaves them alone.
    assert messages_send(message_ids=chunk).outcomes == Counter(busy=6)
    assert len(RecordingBackend.calls) == 3
    # The leases expire; the retry job takes the messages over: the backend confirms the first
    # three (recorded sent without sending again), the other three are sent now.
    CampaignMessage.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert messages_due(retries_only=True) == chunk
    tasks.messages_retry()

    assert set(statuses(campaign).values()) == {("sent", "")}
    assert len(RecordingBackend.calls) == 6 and set(sent_ids().values()) == {1}
    assert tasks.messages_retry() == 0


@pytest.mark.django_db
def test_a_late_record_by_a_worker_that_lost_its_lease_changes_nothing(no_caps):
    member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    [message_id] = messages_due(campaign=campaign)
    stale = _claim(message_id, _Chunk())
    CampaignMessage.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    send_all(campaign)  # the new holder sends and records
    from campaigns.services.sends import _record_sent

    assert not _record_sent(stale, token=stale.lease_token, provider_id="late")
    assert CampaignMessage.objects.get().provider_id != "late"


@pytest.mark.django_db
def test_a_failed_send_is_retried_with_back_off_then_left_failed(no_caps, settings):
    settings.LOYALTY_MESSAGE_MAX_ATTEMPTS = 2
    anna = member_with("sms")
    RecordingBackend.fail[str(anna.phone)] = ConnectionError("provider down")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)

    before = timezone.now()
    assert send_all(campaign) == Counter(retry=1)
    message = CampaignMessage.objects.get()
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error == "ConnectionError: provider down"
    assert message.next_attempt_at >= before + timedelta(seconds=60)
    assert messages_due(campaign=campaign) == []  # not before its time

    CampaignMessage.objects.update(next_attempt_at=timezone.now())
    assert send_all(campaign) == Counter(failed=1)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at) == ("failed", 2, None)
    assert messages_due(campaign=campaign) == [] and len(RecordingBackend.calls) == 2


@pytest.mark.django_db
def test_a_refused_address_fails_at_once_and_a_recovered_provider_sends(no_caps):
    anna, bram = member_with("sms"), member_with("sms")
    RecordingBackend.fail[str(anna.phone)] = DeliveryRefused("unknown number")
    RecordingBackend.fail[str(bram.phone)] = TimeoutError("slow")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    assert send_all(campaign) == Counter(failed=1, retry=1)

    del RecordingBackend.fail[str(bram.phone)]
    CampaignMessage.objects.filter(member=bram).update(next_attempt_at=timezone.now())
    tasks.messages_retry()
    assert statuses(campaign) == {anna.pk: ("failed", ""), bram.pk: ("sent", "")}


@pytest.mark.django_db
def test_a_paused_campaign_sends_nothing_until_it_is_active_again(no_caps):
    anna = member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    chunk = messages_due(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    assert messages_send(message_ids=chunk).outcomes == Counter(paused=1)
    assert messages_due(campaign=campaign) == []
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    assert send_all(campaign) == Counter(sent=1)
    assert statuses(campaign) == {anna.pk: ("sent", "")}


@pytest.mark.django_db
def test_only_an_active_campaign_with_templates_and_an_audience_is_sent(no_caps):
    campaign = message_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DRAFT)
    with pytest.raises(CampaignNotSendable):
        campaign_send_start(campaign=campaign)
    bare = message_campaign(channels=(), name="Bare")
    with pytest.raises(MessageTemplateMissing):
        campaign_send_start(campaign=bare)
    with pytest.raises(Exception, match="Only an active campaign"):
        call_command("campaign_send", campaign.pk, "--no-progress", stdout=StringIO())


@pytest.mark.django_db
def test_email_goes_through_djangos_backend_with_the_message_id(no_caps):
    anna = member_with("email", first_name="<Anna>")
    campaign = message_campaign(channels=("email",))
    template = campaign.message_templates.get()
    template.html_body = "<p>Hello {{ first_name }}</p>"
    template.save()
    campaign_send_start(campaign=campaign, fan_out=False)
    send_all(campaign)
    send_all(campaign)

    [email] = mail.outbox
    message = CampaignMessage.objects.get()
    assert email.to == [anna.email] and email.subject == "News"
    assert email.body == "Hello <Anna>, you have 0 points."
    assert email.alternatives[0][0] == "<p>Hello &lt;Anna&gt;</p>"
    assert email.extra_headers["X-Loyalty-Message-Id"] == message.idempotency_key
    assert message.provider_id == email.extra_headers["Message-ID"]


@pytest.mark.django_db
def test_the_fan_out_hands_the_due_messages_out_in_chunks(no_caps, settings, monkeypatch):
    settings.LOYALTY_JOB_CHUNK_SIZE = 2
    for _ in range(5):
        member_with("push")
    campaign = message_campaign(channels=("push",))
    chunks = []
    monkeypatch.setattr(tasks.messages_send_chunk, "delay", lambda ids, now: chunks.append(ids))
    campaign_send_start(campaign=campaign, fan_out=False)
    assert tasks.messages_fan_out(campaign.pk) == 3
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert sorted(sum(chunks, [])) == messages_due(campaign=campaign)


@pytest.mark.django_db
def test_a_backend_that_cannot_confirm_gets_the_same_idempotency_key_again(no_caps, monkeypatch):
    member_with("sms")
    member_with("sms")
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    monkeypatch.setattr(RecordingBackend, "delivered", lambda self, message_id: None)
    first, second = (_claim(message_id, _Chunk()) for message_id in messages_due(campaign=campaign))
    RecordingBackend().send(first.idempotency_key, str(first.member.phone), "News", "Hello")
    CampaignMessage.objects.update(lease_until=timezone.now() - timedelta(seconds=1))

    tasks.messages_retry()

    # Sent again, with the key the provider dedupes by; the other message once.
    assert sent_ids() == Counter({first.idempotency_key: 2, second.idempotency_key: 1})
    assert set(statuses(campaign).values()) == {("sent", "")}
    assert CampaignMessage.objects.get(pk=first.pk).attempts == 2


@pytest.mark.django_db
def test_the_due_ids_are_read_a_page_at_a_time(no_caps, django_assert_num_queries):
    from campaigns.services import messages_due_ids

    for _ in range(5):
        member_with("push")
    campaign = message_campaign(channels=("push",))
    campaign_send_start(campaign=campaign, fan_out=False)
    due = messages_due(campaign=campaign)
    pages = messages_due_ids(campaign=campaign, page=2)
    # Two pages for the first three ids, the third page for the rest, an empty one to end.
    with django_assert_num_queries(2):
        first = [next(pages) for _ in range(3)]
    with django_assert_num_queries(2):
        assert first + list(pages) == due
    assert len(due) == 5
