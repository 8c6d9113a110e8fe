"""Reasons the system writes are a code with parameters, shown in the reader's language (issue 12,
item 19), and the old English or Dutch texts become codes by migration 0010."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone, translation

from ledger import reasons, services
from ledger.migrations._reason_codes import reason_code_for
from ledger.models import Entry
from members.services import member_enrol

ENGLISH = {
    ("purchase", (("id", "R-1001"),)): "Purchase R-1001",
    ("purchase_return", (("id", "R-1001"),)): "Return of purchase R-1001",
    ("redemption", ()): "Redemption",
    ("points_expired", ()): "Points expired",
    ("challenge_completed", (("name", "Five visits"),)): "Challenge completed: Five visits",
    ("engagement", (("kind", "review"), ("name", "Product review"))): "Engagement: Product review",
    ("birthday", ()): "Birthday points",
    ("referral", ()): "Referral",
}


def test_every_code_in_the_catalogue_has_an_english_rendering_here():
    assert {code for code, _params in ENGLISH} == set(reasons.REASONS)


@pytest.mark.parametrize(("key", "text"), ENGLISH.items())
def test_each_code_renders_in_english(key, text):
    code, params = key
    with translation.override("en"):
        assert reasons.reason_render(code=code, params=dict(params)) == text


@pytest.mark.parametrize(
    ("code", "params", "dutch"),
    [
        ("purchase", {"id": "R-1001"}, "Aankoop R-1001"),
        ("purchase_return", {"id": "R-1001"}, "Retour van aankoop R-1001"),
        ("redemption", {}, "Inwisseling"),
        ("challenge_completed", {"name": "Vijf bezoeken"}, "Uitdaging voltooid: Vijf bezoeken"),
        ("referral", {}, "Verwijzing"),
    ],
)
def test_codes_with_a_dutch_translation_render_in_dutch(code, params, dutch):
    with translation.override("nl"):
        assert reasons.reason_render(code=code, params=params) == dutch


@pytest.mark.parametrize(("key", "text"), ENGLISH.items())
def test_every_code_is_translated_when_rendered(monkeypatch, key, text):
    # Dutch for the newer codes comes after merge: a stand-in catalogue shows that each template
    # goes through gettext in the active language when it is rendered, not when it was written.
    code, params = key
    real = reasons.gettext

    def gettext(message):
        return f"[{translation.get_language()}] {real(message)}"

    monkeypatch.setattr(reasons, "gettext", gettext)
    with translation.override("nl"):
        rendered = reasons.reason_render(code=code, params=dict(params))
    assert rendered.startswith("[nl] ")


def test_a_translation_without_the_placeholder_falls_back_to_english(monkeypatch):
    monkeypatch.setattr(reasons, "gettext", lambda message: "Aankoop %(nummer)s")
    assert reasons.reason_render(code="purchase", params={"id": "R-1"}) == "Purchase R-1"


def test_typed_reasons_and_unknown_codes():
    assert reasons.reason_render(code="", params={}, reason="lost receipt") == "lost receipt"
    assert reasons.reason_render(code="from_the_future", params={}) == "from_the_future"
    with translation.override("en"):
        assert (
            reasons.reason_render(code="redemption", params={}, reason="at the till")
            == "Redemption (at the till)"
        )


def test_a_code_outside_the_catalogue_or_without_its_params_is_refused():
    with pytest.raises(ValueError, match="unknown reason code"):
        reasons.reason_check("made_up", {})
    with pytest.raises(ValueError, match="needs"):
        reasons.reason_check("purchase", {})
    with pytest.raises(ValueError, match="without a reason_code"):
        reasons.reason_check("", {"id": "1"})


@pytest.mark.django_db
def test_expiry_and_a_reversal_store_codes_and_render_per_reader():
    member = member_enrol(email="verval@example.nl")
    earned_at = timezone.now() - timedelta(days=800)
    earn = services.points_earn(
        member=member,
        points=40,
        reason_code="purchase",
        reason_params={"id": "R-7"},
        reference="purchase:1",
        at=earned_at,
        expires_at=earned_at + timedelta(days=1),
    )
    services.points_reverse(
        entry=earn, points=10, reason_code="purchase_return", reason_params={"id": "R-7"}
    )
    assert services.points_expire() == 30
    expired = Entry.objects.get(kind=Entry.Kind.EXPIRE)
    assert (expired.reason, expired.reason_code, expired.reason_params) == (
        "",
        "points_expired",
        {},
    )
    reverse = Entry.objects.get(kind=Entry.Kind.REVERSE)
    with translation.override("nl"):
        assert reverse.reason_text == "Retour van aankoop R-7"
    with translation.override("en"):
        assert reverse.reason_text == "Return of purchase R-7"
        assert expired.reason_text == "Points expired"
    with pytest.raises(ValueError):
        services.points_earn(member=member, points=1, reason_code="nonsense")


# --- migration 0010: old texts to codes -----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason", "reference", "expected"),
    [
        ("earn", "Purchase R-1001", "purchase:5", ("purchase", {"id": "R-1001"})),
        ("earn", "Aankoop R-1001", "purchase:5", ("purchase", {"id": "R-1001"})),
        (
            "reverse",
            "Return of purchase R-9",
            "purchase:5",
            ("purchase_return", {"id": "R-9"}),
        ),
        ("reverse", "Retour van aankoop R-9", "purchase:5", ("purchase_return", {"id": "R-9"})),
        ("redeem", "Redemption", "redemption:3", ("redemption", {})),
        ("redeem", "Inwisseling", "", ("redemption", {})),
        ("expire", "expiry", "lot:4", ("points_expired", {})),
        (
            "earn",
            "Challenge completed: Five visits",
            "challenge:2",
            ("challenge_completed", {"name": "Five visits"}),
        ),
        ("earn", "Uitdaging voltooid: X", "challenge:2", ("challenge_completed", {"name": "X"})),
        ("earn", "Product review", "event:8", ("engagement", {"name": "Product review"})),
        ("earn", "Referral", "event:9", ("referral", {})),
        # Not recognised: kept as text.
        ("adjust", "Purchase R-1 was not scanned", "", None),
        ("earn", "Purchase R-1", "import:17", None),
        ("redeem", "Reward", "demo-reward-1", None),
        ("transfer", "Shared with family", "transfer-to:3", None),
        ("earn", "", "", None),
    ],
)
def test_the_migration_maps_old_texts_it_recognises(kind, reason, reference, expected):
    assert reason_code_for(kind=kind, reason=reason, reference=reference) == expected


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite's schema editor cannot run inside the test's transaction",
)
@pytest.mark.django_db
def test_the_migration_rewrites_entries_and_keeps_them_append_only():
    from importlib import import_module

    migration = import_module("ledger.migrations.0010_entry_reason_codes_from_text")
    member = member_enrol(email="oud@example.nl")
    old = services.points_earn(
        member=member, points=10, reason="Purchase R-1", reference="purchase:1"
    )
    typed = services.points_adjust(
        member=member, points=5, reason="goodwill", actor=_staff(), reference=""
    )
    with connection.schema_editor(atomic=False) as editor:
        migration.to_codes(apps, editor)
    old.refresh_from_db()
    typed.refresh_from_db()
    assert (old.reason, old.reason_code, old.reason_params) == ("", "purchase", {"id": "R-1"})
    assert (typed.reason, typed.reason_code) == ("goodwill", "")
    # The append-only trigger is back.
    with pytest.raises(Exception, match="append-only"):
        Entry.objects.filter(pk=old.pk).update(reason="changed")


def _staff():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username="agent-reasons", password="x")


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "text"), [("en", "Purchase R-3"), ("nl", "Aankoop R-3")])
def test_the_admin_shows_the_reason_in_the_readers_language(client, staff_user, language, text):
    client.force_login(staff_user("Administrator", is_superuser=True))
    member = member_enrol(email="beheer@example.nl")
    entry = services.points_earn(
        member=member, points=3, reason_code="purchase", reason_params={"id": "R-3"}
    )
    for url in ("/admin/ledger/entry/", f"/admin/ledger/entry/{entry.pk}/change/"):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert text in page
