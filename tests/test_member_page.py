"""Customer service's member search and member page (loyalty_site/member_views.py)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from campaigns.models import CampaignMessage, MemberBadge
from campaigns.services import purchase_record, return_record
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Account, AdjustmentRequest, Entry, Lot
from loyalty_site import member_page
from members.models import AuditEntry, Card, Consent, Member
from members.services import card_issue, consent_grant, member_enrol
from rewards.models import Redemption
from rewards.services import redemption_redeem, redemption_reserve
from tests.campaigns.factories import BadgeFactory, ChallengeFactory, EarningRuleFactory
from tests.campaigns.sending import message_campaign
from tests.factories import MemberFactory, UserFactory
from tests.members.factories import ladder
from tests.rewards.factories import VoucherCodeFactory, VoucherRewardFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]


# --- helpers ---


def balance(member) -> int:
    return Account.objects.get(member=member).balance


def page_url(member, name="member-page", *args) -> str:
    return reverse(name, args=[member.pk, *args])


def signed_in(client, staff_user, role):
    user = staff_user(role)
    client.force_login(user)
    return user


@pytest.fixture
def agent(client, staff_user):
    return signed_in(client, staff_user, "Customer service")


@pytest.fixture
def card(anna):
    return card_issue(member=anna)


@pytest.fixture
def rich(anna):
    """Anna with points, a purchase with its rule and a return, a voucher redemption, a
    message, a challenge and a badge, and a consent."""
    ladder()
    EarningRuleFactory(name="Base rate", rate=Decimal(10))
    now = timezone.now()
    result = purchase_record(
        member=anna,
        channel="pos",
        external_id="receipt-1",
        amount=Decimal("40.00"),
        currency="EUR",
        occurred_at=now,
        store="Utrecht",
        lines=[{"sku": "COFFEE", "category": "drinks", "quantity": 2, "amount": "40.00"}],
    )
    return_record(purchase=result.purchase, amount=Decimal("10.00"), external_id="return-1")
    reward = VoucherRewardFactory(name_en="Coffee voucher", points=100)
    VoucherCodeFactory(reward=reward, code="ABCD-EFGH-JKMN")
    redemption_redeem(member=anna, reward=reward, channel="app")
    campaign = message_campaign(name="Spring news")
    CampaignMessage.objects.create(
        campaign=campaign,
        member=anna,
        channel="sms",
        status=CampaignMessage.Status.SENT,
        sent_at=now,
    )
    ChallengeFactory(name="Three coffees", active=True)
    MemberBadge.objects.create(member=anna, badge=BadgeFactory(name="Early bird"))
    consent_grant(member=anna, purpose=Consent.Purpose.SMS, channel="app")
    return anna


# --- search ---


@pytest.mark.parametrize(
    "term",
    ["Anna", "de Vries", "anna de vries", "anna.devries@example.nl", "06 1234 5678", "LEG-42"],
)
def test_one_hit_opens_the_member_page(client, agent, anna, term):
    MemberFactory(first_name="Bert", last_name="Jansen", email="bert@example.nl")
    response = client.get(reverse("member-search"), {"q": term})
    assert response.status_code == 302
    assert response.url == page_url(anna)


def test_a_card_number_typed_with_spaces_finds_its_member(client, agent, anna, card):
    spaced = " ".join(card.number[i : i + 4] for i in range(0, 16, 4))
    response = client.get(reverse("member-search"), {"q": spaced})
    assert response.status_code == 302
    assert response.url == page_url(anna)


def test_several_hits_are_a_list_with_the_term_in_the_box(client, agent):
    for n in range(3):
        member = member_enrol(email=f"jan{n}@example.nl", first_name="Jan", last_name=f"Smit {n}")
        card_issue(member=member)
        ledger_services.points_earn(member=member, points=10 * (n + 1), reason="test")
    response = client.get(reverse("member-search"), {"q": "jan"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="jan"' in html
    assert response.context["search_query"] == "jan"
    assert [row["member"].last_name for row in response.context["rows"]] == [
        "Smit 0",
        "Smit 1",
        "Smit 2",
    ]
    assert [row["balance"] for row in response.context["rows"]] == [10, 20, 30]
    assert all(row["card"] for row in response.context["rows"])
    assert "jan0@example.nl" in html


def test_no_hit_says_so(client, agent, anna):
    response = client.get(reverse("member-search"), {"q": "nobody-like-this"})
    assert response.status_code == 200
    assert "No member matches" in response.content.decode()


def test_a_long_list_pages_without_counting(client, agent, django_assert_max_num_queries):
    MemberFactory.create_batch(30, first_name="Piet")
    # Session, user, the ids of each part of a name search (external id, last name, first
    # name), the page's members, their cards, and the template's few: the same on any size.
    with django_assert_max_num_queries(10) as captured:
        response = client.get(reverse("member-search"), {"q": "piet"})
    assert not any("COUNT(" in query["sql"].upper() for query in captured.captured_queries)
    assert len(response.context["rows"]) == 25
    assert response.context["has_next"] is True
    second = client.get(reverse("member-search"), {"q": "piet", "page": 2})
    assert len(second.context["rows"]) == 5
    assert second.context["has_next"] is False


@pytest.mark.parametrize("role, status", [(r, 403 if r == "Finance" else 200) for r in ROLES])
def test_search_is_for_the_roles_that_read_members(client, staff_user, role, status):
    signed_in(client, staff_user, role)
    assert client.get(reverse("member-search"), {"q": "x"}).status_code == status


def test_search_needs_a_sign_in(client):
    response = client.get(reverse("member-search"), {"q": "x"})
    assert response.status_code == 302
    assert "/login/" in response.url


def test_the_sidebar_links_the_member_search(client, agent):
    html = client.get("/").content.decode()
    assert f'href="{reverse("member-search")}"' in html
    assert "/admin/members/card/" not in html


# --- the page, per role ---


@pytest.mark.parametrize("role", ROLES)
def test_every_role_opens_the_member_page(client, staff_user, rich, role):
    signed_in(client, staff_user, role)
    response = client.get(page_url(rich))
    assert response.status_code == 200
    html = response.content.decode()
    assert_no_unmarked_inline_code(html, None)
    personal = role != "Finance"
    assert ("anna.devries@example.nl" in html) is personal
    assert ("de Vries" in html) is personal
    assert (f"Member no. {rich.pk}" in html) is not personal
    points_shown = role != "Marketing"
    assert ('data-figure="balance"' in html) is points_shown
    may_act = role in ("Customer service", "Administrator")
    assert ('id="adjust-form"' in html) is may_act
    assert ('id="erase-form"' in html) is may_act
    assert ('id="consent-form"' in html) is may_act


def test_a_staff_user_without_a_role_is_refused(client, db):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    member = MemberFactory()
    assert client.get(page_url(member)).status_code == 403


def test_an_unknown_member_is_404(client, agent):
    assert client.get(reverse("member-page", args=[999999])).status_code == 404


def test_finance_follows_a_member_link_to_the_points_alone(client, staff_user, rich):
    signed_in(client, staff_user, "Finance")
    html = client.get(page_url(rich)).content.decode()
    assert f'data-figure="balance">{balance(rich)}<' in html
    assert "LEG-42" not in html and "+31612345678" not in html
    assert 'id="profile-panel"' not in html and 'id="cards-panel"' not in html
    ledger = client.get(page_url(rich, "member-page-ledger"))
    assert ledger.status_code == 200
    assert "anna.devries@example.nl" not in ledger.content.decode()


def test_the_overview_shows_profile_consents_cards_tier_and_points(client, agent, rich, card):
    rich.profile = {"favourite_store": "Utrecht"}
    rich.save(update_fields=["profile"])
    html = client.get(page_url(rich)).content.decode()
    assert "favourite_store" in html and "Utrecht" in html
    assert card.number in html
    assert "SMS" in html and "Granted" in html
    assert "Bronze" in html and "Silver" in html  # the tier and the next one
    assert '<progress id="tier-progress" max="500"' in html
    summary = ledger_selectors.balance_summary(member=rich)
    assert f'data-figure="available">{summary["available"]}<' in html


def test_lots_expiring_soon_are_listed(client, agent, anna):
    ledger_services.points_earn(member=anna, points=70, reason="test")
    Lot.objects.filter(account__member=anna).update(expires_at=timezone.now() + timedelta(days=20))
    ledger_services.points_earn(member=anna, points=5, reason="later")  # expires in 2 years
    response = client.get(page_url(anna))
    assert [lot.remaining for lot in response.context["lots"]] == [70]
    assert response.context["expiring"]["points"] == 70
    assert 'data-figure="expiring">70<' in response.content.decode()


# --- the tabs ---

TAB_ROLES = {
    "member-page-ledger": {"Customer service", "Finance", "Administrator"},
    "member-page-purchases": {"Customer service", "Finance", "Administrator"},
    "member-page-redemptions": set(ROLES),
    "member-page-messages": {"Marketing", "Customer service", "Administrator"},
    "member-page-engagement": {"Marketing", "Customer service", "Administrator"},
    # Finance audits staff changes (the audit log page): it reads a member's trail too.
    "member-page-audit": {"Customer service", "Finance", "Administrator"},
}


@pytest.mark.parametrize("name", sorted(TAB_ROLES))
@pytest.mark.parametrize("role", ROLES)
def test_each_tab_is_for_the_roles_that_may_read_it(client, staff_user, rich, name, role):
    signed_in(client, staff_user, role)
    response = client.get(page_url(rich, name))
    assert response.status_code == (200 if role in TAB_ROLES[name] else 403)
    if response.status_code == 200:
        assert_no_unmarked_inline_code(response.content.decode(), None)
    overview = client.get(page_url(rich)).content.decode()
    assert (f'href="{page_url(rich, name)}"' in overview) is (role in TAB_ROLES[name])


def test_a_tab_to_htmx_is_the_fragment_only(client, agent, rich):
    response = client.get(page_url(rich, "member-page-ledger"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="member-tabs">')


def test_a_page_htmx_restores_from_history_is_whole(client, agent, anna):
    response = client.get(
        page_url(anna, "member-page-ledger"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert "<html" in response.content.decode()


def test_the_ledger_shows_each_earn_with_its_rules(client, agent, rich):
    html = client.get(page_url(rich, "member-page-ledger")).content.decode()
    assert "Base rate: +400" in html
    assert "purchase receipt-1" in html
    assert "Reversal" in html and "Redeem" in html


def test_the_ledger_pages_by_25(client, agent, anna):
    for n in range(30):
        ledger_services.points_earn(member=anna, points=n + 1, reason=f"earn {n}")
    first = client.get(page_url(anna, "member-page-ledger"))
    assert [e.amount for e in first.context["page"].object_list] == list(range(30, 5, -1))
    second = client.get(page_url(anna, "member-page-ledger"), {"page": 2})
    assert [e.amount for e in second.context["page"].object_list] == [5, 4, 3, 2, 1]
    assert "Page 2 of 2" in second.content.decode()


def test_purchases_show_lines_returns_and_points(client, agent, rich):
    html = client.get(page_url(rich, "member-page-purchases")).content.decode()
    assert "receipt-1" in html and "Utrecht" in html
    assert "2 × COFFEE" in html
    assert "return-1" in html
    assert "400" in html and "(−100)" in html


def test_redemptions_show_the_voucher_code(client, agent, rich):
    html = client.get(page_url(rich, "member-page-redemptions")).content.decode()
    assert "Coffee voucher" in html
    assert "ABCD-EFGH-JKMN" in html


def test_finance_sees_redemptions_without_voucher_codes(client, staff_user, rich):
    signed_in(client, staff_user, "Finance")
    html = client.get(page_url(rich, "member-page-redemptions")).content.decode()
    assert "Coffee voucher" in html
    assert "ABCD-EFGH-JKMN" not in html


# --- sending a voucher code again ---


def _resend(client, member, **data):
    redemption = Redemption.objects.get(member=member)
    url = page_url(member, "member-page-voucher-resend", redemption.pk)
    return client.post(url, {f"voucher-{k}": v for k, v in data.items()}, follow=True)


def test_an_agent_sends_a_voucher_code_again_by_email(client, agent, rich, mailoutbox):
    html = client.get(page_url(rich, "member-page-redemptions")).content.decode()
    assert "Send again" in html
    page = _resend(client, rich, channel="email", reason="Lost the e-mail")
    assert page.redirect_chain[-1][0] == page_url(rich, "member-page-redemptions")
    [mail] = mailoutbox
    assert mail.to == [rich.email] and "ABCD-EFGH-JKMN" in mail.body
    assert "Coffee voucher" in mail.subject
    entry = AuditEntry.objects.get(action="voucher_resend")
    assert (entry.actor, entry.member, entry.reason) == (agent, rich, "Lost the e-mail")
    assert entry.details["channel"] == "email"
    assert "ABCD-EFGH-JKMN" not in json.dumps(entry.details)  # the code stays out of the log


def test_a_voucher_code_goes_again_by_sms(client, agent, rich, settings):
    from campaigns.backends import RecordingBackend

    settings.LOYALTY_SMS_BACKEND = "campaigns.backends.RecordingBackend"
    RecordingBackend.reset()
    _resend(client, rich, channel="sms", reason="Asked at the till")
    [(_id, to, _subject, body)] = RecordingBackend.calls
    assert to == str(rich.phone) and "ABCD-EFGH-JKMN" in body
    RecordingBackend.reset()


def test_a_provider_that_is_down_gives_a_message_not_an_error(client, agent, rich, settings):
    from campaigns.backends import RecordingBackend

    settings.LOYALTY_SMS_BACKEND = "campaigns.backends.RecordingBackend"
    RecordingBackend.reset()
    RecordingBackend.fail[str(rich.phone)] = ConnectionError("provider down")
    page = _resend(client, rich, channel="sms", reason="Asked at the till")
    assert page.status_code == 200
    assert "could not be sent just now" in page.content.decode()
    assert not AuditEntry.objects.filter(action="voucher_resend").exists()
    RecordingBackend.reset()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": ""}, "This field is required."),
        ({"used": True}, "This voucher code has been used already."),
        ({"no_email": True}, "The member has no e-mail address to send the voucher to."),
    ],
)
def test_a_resend_that_cannot_be_done_sends_nothing(client, agent, rich, mailoutbox, change,
                                                    message):  # fmt: skip
    from rewards.models import VoucherCode

    if change.get("used"):
        VoucherCode.objects.update(status=VoucherCode.Status.USED)
    if change.get("no_email"):
        Member.objects.filter(pk=rich.pk).update(email="")
    page = _resend(client, rich, channel="email", reason=change.get("reason", "Lost it"))
    assert message in page.content.decode()
    assert mailoutbox == []
    assert not AuditEntry.objects.filter(action="voucher_resend").exists()


@pytest.mark.parametrize("role", ["Marketing", "Finance"])
def test_only_customer_service_sends_a_voucher_again(client, staff_user, rich, mailoutbox, role):
    signed_in(client, staff_user, role)
    redemption = Redemption.objects.get(member=rich)
    url = page_url(rich, "member-page-voucher-resend", redemption.pk)
    response = client.post(url, {"voucher-channel": "email", "voucher-reason": "x"})
    assert response.status_code == 403
    assert mailoutbox == []


def test_messages_show_what_the_member_received(client, agent, rich):
    html = client.get(page_url(rich, "member-page-messages")).content.decode()
    assert "Spring news" in html and "Sent" in html


def test_challenges_and_badges(client, agent, rich):
    html = client.get(page_url(rich, "member-page-engagement")).content.decode()
    assert "Three coffees" in html
    assert "Early bird" in html


def test_the_audit_trail_lists_staff_changes(client, agent, anna):
    ledger_services.points_adjust(member=anna, points=20, reason="goodwill", actor=agent)
    html = client.get(page_url(anna, "member-page-audit")).content.decode()
    assert "Points adjusted (+20)" in html
    assert "goodwill" in html
    assert agent.username in html


# --- actions: adjust points ---


def test_adjust_points_posts_and_audits(client, agent, anna):
    ledger_services.points_earn(member=anna, points=100, reason="test")
    response = client.post(
        page_url(anna, "member-page-adjust"),
        {"adjust-points": "50", "adjust-reason": "missing receipt"},
        follow=True,
    )
    assert balance(anna) == 150
    entry = Entry.objects.get(kind=Entry.Kind.ADJUST)
    assert (entry.amount, entry.actor, entry.reason) == (50, agent, "missing receipt")
    audit = AuditEntry.objects.get(action="points_adjust")
    assert (audit.actor, audit.member, audit.reason) == (agent, anna, "missing receipt")
    assert audit.details == {"points": 50, "entry_id": entry.pk}
    html = response.content.decode()
    assert "+50 points posted. New balance: 150." in html
    assert 'data-figure="balance">150<' in html


def test_a_large_adjustment_waits_for_approval(client, agent, anna, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    ledger_services.points_earn(member=anna, points=10, reason="test")
    response = client.post(
        page_url(anna, "member-page-adjust"),
        {"adjust-points": "500", "adjust-reason": "lost purchases"},
        follow=True,
    )
    request = AdjustmentRequest.objects.get()
    assert (request.points, request.status, request.requested_by) == (500, "pending", agent)
    assert balance(anna) == 10
    assert "waits for a second person" in response.content.decode()
    assert AuditEntry.objects.get(action="points_adjust").details == {
        "points": 500,
        "adjustment_request_id": request.pk,
    }


def test_a_debit_below_zero_is_refused_and_writes_nothing(client, agent, anna):
    ledger_services.points_earn(member=anna, points=10, reason="test")
    response = client.post(
        page_url(anna, "member-page-adjust"),
        {"adjust-points": "-50", "adjust-reason": "oops"},
        follow=True,
    )
    assert "does not have enough points" in response.content.decode()
    assert balance(anna) == 10
    assert not Entry.objects.filter(kind=Entry.Kind.ADJUST).exists()
    assert not AuditEntry.objects.filter(action="points_adjust").exists()


@pytest.mark.parametrize(
    "data, error",
    [
        ({"adjust-points": "0", "adjust-reason": "x"}, "other than zero"),
        ({"adjust-points": "ten", "adjust-reason": "x"}, "Enter a whole number"),
        ({"adjust-points": "5"}, "This field is required"),
        ({"adjust-points": "99999999", "adjust-reason": "x"}, "at most"),
    ],
)
def test_bad_adjustment_input_is_a_form_error(client, agent, anna, data, error):
    response = client.post(page_url(anna, "member-page-adjust"), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Entry.objects.filter(kind=Entry.Kind.ADJUST).exists()
    assert not AdjustmentRequest.objects.exists()


# --- actions: the roles that may not ---

ACTIONS = {
    "member-page-adjust": ({"adjust-points": "5", "adjust-reason": "x"}, False),
    "member-page-card-block": ({"card-reason": "lost"}, True),
    "member-page-card-replace": ({"card-reason": "lost"}, True),
    "member-page-consent": (
        {"consent-purpose": "sms", "consent-action": "grant", "consent-reason": "x"},
        False,
    ),
    "member-page-export": ({"export-reason": "request"}, False),
    "member-page-erase": ({"erase-reason": "request", "erase-confirmation": "{pk}"}, False),
}


@pytest.mark.parametrize("name", sorted(ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_actions_only_for_the_roles_that_may(client, staff_user, anna, card, name, role):
    user = signed_in(client, staff_user, role)
    data, of_card = ACTIONS[name]
    data = {key: value.format(pk=anna.pk) for key, value in data.items()}
    url = page_url(anna, name, card.pk) if of_card else page_url(anna, name)
    audits = AuditEntry.objects.count()
    response = client.post(url, data)
    if role in ("Marketing", "Finance"):
        assert response.status_code == 403
        assert AuditEntry.objects.count() == audits
    else:
        assert response.status_code in (200, 302)
        assert AuditEntry.objects.filter(actor=user, member=anna).exists()


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_actions_are_post_only(client, agent, anna, card, name):
    of_card = ACTIONS[name][1]
    url = page_url(anna, name, card.pk) if of_card else page_url(anna, name)
    assert client.get(url).status_code == 405


# --- actions: cards ---


def test_block_a_card(client, agent, anna, card):
    response = client.post(
        page_url(anna, "member-page-card-block", card.pk), {"card-reason": "lost"}, follow=True
    )
    card.refresh_from_db()
    assert card.status == Card.Status.BLOCKED
    audit = AuditEntry.objects.get(action="card_block")
    assert (audit.actor, audit.reason, audit.details) == (agent, "lost", {"card_id": card.pk})
    assert f"Card {card.number} is blocked." in response.content.decode()


def test_blocking_a_blocked_card_is_refused(client, agent, anna, card):
    client.post(page_url(anna, "member-page-card-block", card.pk), {"card-reason": "lost"})
    response = client.post(
        page_url(anna, "member-page-card-block", card.pk), {"card-reason": "again"}, follow=True
    )
    assert "Only an active card can be blocked" in response.content.decode()
    assert AuditEntry.objects.filter(action="card_block").count() == 1


def test_replace_a_card_shows_the_new_number(client, agent, anna, card):
    response = client.post(
        page_url(anna, "member-page-card-replace", card.pk), {"card-reason": "broken"}, follow=True
    )
    card.refresh_from_db()
    assert card.status == Card.Status.REPLACED
    new = card.replaced_by
    assert new.member == anna and new.status == Card.Status.ACTIVE
    assert f"The new card number is {new.number}." in response.content.decode()
    audit = AuditEntry.objects.get(action="card_replace")
    assert (audit.actor, audit.reason) == (agent, "broken")


def test_a_card_action_needs_a_reason(client, agent, anna, card):
    response = client.post(page_url(anna, "member-page-card-block", card.pk), {"card-reason": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    card.refresh_from_db()
    assert card.status == Card.Status.ACTIVE


def test_another_members_card_is_404(client, agent, anna):
    other = card_issue(member=MemberFactory())
    response = client.post(page_url(anna, "member-page-card-block", other.pk), {"card-reason": "x"})
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.status == Card.Status.ACTIVE


# --- actions: consents ---


def test_grant_and_withdraw_a_consent(client, agent, anna):
    url = page_url(anna, "member-page-consent")
    base = {"consent-purpose": "marketing_email", "consent-reason": "asked on the phone"}
    client.post(url, {**base, "consent-action": "grant"})
    response = client.post(url, {**base, "consent-action": "withdraw"}, follow=True)
    actions = list(
        Consent.objects.filter(member=anna, purpose="marketing_email")
        .order_by("at", "id")
        .values_list("action", "actor", "channel")
    )
    assert actions == [("grant", agent.pk, "back office"), ("withdraw", agent.pk, "back office")]
    audit = AuditEntry.objects.filter(action="consent_withdraw").get()
    assert (audit.actor, audit.reason) == (agent, "asked on the phone")
    assert "Consent withdrawn: Marketing e-mail." in response.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {"consent-purpose": "telepathy", "consent-action": "grant", "consent-reason": "x"},
        {"consent-purpose": "sms", "consent-action": "maybe", "consent-reason": "x"},
        {"consent-purpose": "sms", "consent-action": "grant", "consent-reason": ""},
    ],
)
def test_bad_consent_input_is_a_form_error(client, agent, anna, data):
    response = client.post(page_url(anna, "member-page-consent"), data)
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    assert not Consent.objects.filter(actor=agent).exists()


# --- actions: export and erase ---


def test_export_downloads_the_personal_data_and_audits_it(client, agent, rich):
    response = client.post(
        page_url(rich, "member-page-export"), {"export-reason": "request 12 May"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert f"member-{rich.public_id}.json" in response["Content-Disposition"]
    document = json.loads(response.content)
    assert document["member"]["email"] == "anna.devries@example.nl"
    audit = AuditEntry.objects.get(action="member_export")
    assert (audit.actor, audit.reason) == (agent, "request 12 May")


def test_export_needs_a_reason(client, agent, anna):
    response = client.post(page_url(anna, "member-page-export"), {"export-reason": ""})
    assert response.status_code == 400
    assert not AuditEntry.objects.filter(action="member_export").exists()


def test_erase_with_the_typed_number(client, agent, anna, card):
    ledger_services.points_earn(member=anna, points=30, reason="test")
    response = client.post(
        page_url(anna, "member-page-erase"),
        {"erase-reason": "erasure request", "erase-confirmation": str(anna.pk)},
        follow=True,
    )
    anna.refresh_from_db()
    assert anna.status == Member.Status.ERASED
    assert anna.email == ""
    assert balance(anna) == 30  # the ledger stays
    audit = AuditEntry.objects.get(action="member_erase")
    assert (audit.actor, audit.reason) == (agent, "erasure request")
    html = response.content.decode()
    assert "personal data is erased" in html
    assert f"Erased member no. {anna.pk}" in html


@pytest.mark.parametrize("typed", ["", "ERASE", "12345678"])
def test_erase_without_the_right_confirmation_writes_nothing(client, agent, anna, typed):
    response = client.post(
        page_url(anna, "member-page-erase"),
        {"erase-reason": "request", "erase-confirmation": typed},
    )
    assert response.status_code == 400
    assert f"Type {anna.pk}" in response.content.decode() or "required" in response.content.decode()
    anna.refresh_from_db()
    assert anna.status == Member.Status.ACTIVE
    assert not AuditEntry.objects.filter(action="member_erase").exists()


def test_erase_is_refused_while_a_redemption_is_reserved(client, agent, anna):
    ledger_services.points_earn(member=anna, points=500, reason="test")
    reward = VoucherRewardFactory(points=100)
    VoucherCodeFactory(reward=reward)
    redemption_reserve(member=anna, reward=reward)
    response = client.post(
        page_url(anna, "member-page-erase"),
        {"erase-reason": "request", "erase-confirmation": str(anna.pk)},
        follow=True,
    )
    assert "reserved redemption" in response.content.decode()
    anna.refresh_from_db()
    assert anna.status == Member.Status.ACTIVE
    assert Redemption.objects.get().status == Redemption.Status.RESERVED


# --- query bounds: the same bound for a member with few rows and with many ---


def _many(member, n):
    ledger_services.points_earn(member=member, points=1000, reason="start")
    for i in range(n):
        purchase_record(
            member=member,
            channel="pos",
            external_id=f"bulk-{member.pk}-{i}",
            amount=Decimal("5.00"),
            currency="EUR",
            occurred_at=timezone.now(),
            lines=[{"sku": "TEA", "category": "drinks", "quantity": 1, "amount": "5.00"}],
        )
        consent_grant(member=member, purpose=Consent.Purpose.SMS, actor=None)
    for _ in range(3):
        card_issue(member=member)


@pytest.mark.parametrize("rows", [1, 40])
@pytest.mark.parametrize(
    "name, bound",
    [
        ("member-page", 22),
        ("member-page-ledger", 12),
        ("member-page-purchases", 14),
        ("member-page-redemptions", 12),
        ("member-page-messages", 12),
        ("member-page-engagement", 12),
        ("member-page-audit", 12),
    ],
)
def test_each_page_answers_in_bounded_queries(
    client, staff_user, rich, rows, name, bound, django_assert_max_num_queries
):
    user = staff_user("Administrator")
    client.force_login(user)
    _many(rich, rows)
    client.get(page_url(rich, name))  # warm the session and the content types
    with django_assert_max_num_queries(bound):
        response = client.get(page_url(rich, name))
    assert response.status_code == 200


# --- selectors ---


def test_member_page_selectors(anna, agent):
    from campaigns import selectors as campaign_selectors
    from members import selectors as member_selectors
    from rewards import selectors as reward_selectors

    ledger_services.points_earn(member=anna, points=300, reason="test")
    Lot.objects.filter(account__member=anna).update(expires_at=timezone.now() + timedelta(days=5))
    assert [lot.remaining for lot in ledger_selectors.lots_expiring_soon(member=anna, days=10)] == [
        300
    ]
    assert not ledger_selectors.lots_expiring_soon(member=anna, days=1).exists()
    assert list(ledger_selectors.pending_for(member=anna)) == []
    newest = card_issue(member=anna)
    cards = list(member_selectors.cards_for(member=anna))
    assert cards[0] == newest and len(cards) == 2  # and the card of the enrolment
    consent_grant(member=anna, purpose="sms", actor=agent, reason="phone")
    assert member_selectors.consent_history(member=anna).first().actor == agent
    assert member_selectors.audit_trail_for(member=anna).first().reason == "phone"
    assert list(reward_selectors.redemptions_for(member=anna)) == []
    assert list(campaign_selectors.messages_for(member=anna)) == []


def test_the_tabs_follow_the_permissions(staff_user):
    finance = staff_user("Finance")
    slugs = [tab.slug for tab in member_page.tabs_for(finance)]
    assert slugs == ["overview", "ledger", "purchases", "redemptions", "audit"]
    assert member_page.may_open(finance)
    assert not member_page.may_open(UserFactory(is_staff=True))
    Group.objects.get(name="Finance")  # the roles exist


def test_a_name_list_merges_first_and_last_names_in_last_name_order_across_pages(
    agent, monkeypatch
):
    from loyalty_site import member_page

    def found(term, number):
        page, has_next = member_page.search_page(
            term=term, number=number, shown=member_page.shown_for(agent)
        )
        return [row["member"] for row in page], has_next

    # Found by the last name (either case), by the first name, by both (listed once), and
    # "first last"; in the order of the lowered last name, then enrolment.
    jongs = [MemberFactory(first_name="Karel", last_name=f"de Jong {n}") for n in range(4)]
    dennis = MemberFactory(first_name="Dennis", last_name="Albers")
    both = MemberFactory(first_name="Deborah", last_name="De Boer")
    MemberFactory(first_name="Karel", last_name="Jansen")  # no match
    assert found("de", 1) == ([dennis, both, *jongs], False)
    # Two a page: each part of the search is cut at the page's end, the merge stays in order.
    monkeypatch.setattr(member_page, "PAGE_SIZE", 2)
    pages = [found("De", number) for number in (1, 2, 3)]
    assert pages == [([dennis, both], True), (jongs[:2], True), (jongs[2:], False)]
    assert found("karel de j", 1) == (jongs[:2], True)


def test_a_name_search_reads_a_page_of_the_last_name_index(agent):
    """On PostgreSQL the last-name prefix is a range of member_last_name_order read in its
    order: no sort of every match, however many share the name."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from loyalty_site import member_page

    if connection.vendor != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    MemberFactory.create_batch(30, first_name="Karel", last_name="de Jong")
    with CaptureQueriesContext(connection) as captured:
        rows, has_next = member_page.search_page(
            term="de J", number=2, shown=member_page.shown_for(agent)
        )
    assert len(rows) == 5 and not has_next
    last_name = [
        q["sql"]
        for q in captured.captured_queries
        if "COLLATE \"C\")::text LIKE 'de j%'" in q["sql"]
    ]
    assert len(last_name) == 1, captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + last_name[0])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "member_last_name_order" in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("term", ["anna.devries@example.nl", "06 1234 5678"])
def test_an_email_or_phone_search_reads_the_members_once(agent, anna, term):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from loyalty_site import member_page

    with CaptureQueriesContext(connection) as captured:
        member_page.search_page(term=term, number=1, shown=member_page.shown_for(agent))
    # Not the two steps of a name search: one query finds the member.
    member_reads = [q for q in captured.captured_queries if 'FROM "members_member"' in q["sql"]]
    assert len(member_reads) == 1


def test_a_first_name_part_is_read_by_the_first_name_index(agent):
    """ "Jan..." in last-name order must not be read through the last-name index (which would
    scan it from the start until enough Jans turn up: most of the table when their last names
    sort late); the planner is told sorting is dear, which would make it pick that index were
    the part ordered by the index's own expression."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from members.selectors import member_search_ids

    if connection.vendor != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    MemberFactory.create_batch(5, first_name="Jan", last_name="Zwart")
    with CaptureQueriesContext(connection) as captured:
        assert len(member_search_ids("jan", limit=3)) == 3
    first_name = [
        q["sql"]
        for q in captured.captured_queries
        if "\"first_name\")::text LIKE 'jan%'" in q["sql"]
    ]
    assert len(first_name) == 1, captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + first_name[0])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "member_first_name_prefix" in plan and "member_last_name_order" not in plan, plan
