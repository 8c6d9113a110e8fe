import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from ledger.models import Account, Entry
from members.models import Card, Member

PROJECT_APPS = ("members", "ledger", "rewards", "campaigns", "loyalty_site")


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for app in PROJECT_APPS
        for model in apps.get_app_config(app).get_models()
    }


# The full demo (600 members, a year of history) is what `make run` loads; the suite loads a
# small one so that it stays fast. Volume and idempotence do not depend on the size. Loading
# even a small demo takes the suite's workers 25-45 s, so one load serves every check of what
# it holds (it was loaded once per check before: about two minutes of the suite).
@pytest.mark.django_db
def test_the_demo_loads_once_with_its_ledger_logins_and_campaigns(capsys, client):
    call_command("demo_data", members=30)
    first = _row_counts()
    assert first["members.Member"] >= 30
    assert Card.objects.count() >= Member.objects.count()
    assert Entry.objects.exists()
    assert first["ledger.Purchase"] > 0
    assert first["rewards.Reward"] > 0
    assert first["campaigns.EarningRule"] > 0

    _ledger_reconciles()
    _campaigns_show_every_stage_with_messages_and_results()
    _logins_have_their_role(client)

    call_command("demo_data", members=30)
    assert _row_counts() == first
    out = capsys.readouterr().out
    assert "marketing" in out and "loyalty-demo" in out


def _ledger_reconciles():
    for account in Account.objects.all():
        entries = sum(account.entries.values_list("amount", flat=True))
        assert account.balance == entries


def _logins_have_their_role(client):
    user = get_user_model().objects.get(username="service")
    assert list(user.groups.values_list("name", flat=True)) == ["Customer service"]
    response = client.post("/login/", {"username": "service", "password": "loyalty-demo"})
    assert response.status_code == 302
    landing = client.get("/")
    assert landing.status_code == 200 and landing.context["user"] == user
    client.logout()


def test_demo_data_refuses_a_nonsense_size():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("demo_data", members=0)


def _campaigns_show_every_stage_with_messages_and_results():
    from campaigns.models import Campaign, CampaignMessage, CampaignResult, Segment

    statuses = dict(Campaign.objects.values_list("kind", "status"))
    assert statuses == {"message": "ended", "earning": "active", "offer": "scheduled"}
    finished = Campaign.objects.get(kind="message")
    # A finished campaign with its control group: held-out members recorded, never sent.
    messages = CampaignMessage.objects.filter(campaign=finished)
    assert messages.filter(status="sent").exists()
    assert set(messages.filter(suppression="control").values_list("status", flat=True)) <= {
        "suppressed"
    }
    assert CampaignResult.objects.filter(campaign=finished).exists()
    assert Segment.objects.filter(name__startswith="RFM: ").count() == 8
    assert Campaign.objects.get(kind="earning").transitions.filter(to_status="active").exists()
