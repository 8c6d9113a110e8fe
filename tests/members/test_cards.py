"""Cards (members/services/cards.py)."""

import pytest

from members import cardnumbers
from members.errors import (
    CardBlocked,
    CardNotActive,
    CardNotFound,
)
from members.models import AuditEntry, Card
from members.selectors import (
    card_active_member,
)
from members.services import (
    card_block,
    card_issue,
    card_replace,
    member_enrol,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


# --- e-mail and phone: normalised and unique ---


def test_generated_card_numbers_carry_a_valid_luhn_check_digit():
    member = member_enrol(email="c@example.nl")
    number = member.cards.get().number
    assert cardnumbers.is_valid(number)
    assert len(number) == 16 and number.startswith(cardnumbers.PREFIX)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not cardnumbers.is_valid(wrong)


def test_luhn_check_digit_of_a_known_number():
    assert cardnumbers.luhn_check_digit("7992739871") == "3"
    assert cardnumbers.luhn_check_digit("411111111111111") == "1"


def test_a_single_transposition_is_caught():
    number = cardnumbers.generate()
    for i in range(len(number) - 1):
        if number[i] != number[i + 1] and {number[i], number[i + 1]} != {"0", "9"}:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not cardnumbers.is_valid(swapped)


def test_members_may_hold_several_cards():
    member = member_enrol(email="c@example.nl")
    card_issue(member=member)
    assert member.cards.filter(status=Card.Status.ACTIVE).count() == 2


def test_replacement_keeps_the_member_and_stops_the_old_card():
    member = member_enrol(email="c@example.nl")
    old = member.cards.get()
    new = card_replace(card=old, actor=UserFactory(), reason="damaged")
    old.refresh_from_db()
    assert new.member == member and new.number != old.number
    assert old.status == Card.Status.REPLACED and old.replaced_by == new
    assert card_active_member(new.number) == member
    with pytest.raises(CardBlocked) as caught:
        card_active_member(old.number)
    assert caught.value.code == "card_blocked"
    assert AuditEntry.objects.filter(action="card_replace", member=member).exists()


def test_replacement_keeps_the_balance():
    from ledger.selectors import balance_summary
    from ledger.services import points_earn

    member = member_enrol(email="c@example.nl")
    points_earn(member=member, points=120, channel="pos")
    new = card_replace(card=member.cards.get())
    assert balance_summary(member=card_active_member(new.number))["balance"] == 120


def test_a_blocked_card_fails_and_a_replaced_card_cannot_be_replaced_again():
    member = member_enrol(email="c@example.nl")
    card = member.cards.get()
    card_block(card=card, reason="lost")
    with pytest.raises(CardBlocked) as caught:
        card_active_member(card.number)
    assert caught.value.code == "card_blocked"
    with pytest.raises(CardNotActive) as caught:
        card_block(card=card)
    assert caught.value.code == "card_not_active"
    new = card_replace(card=card)  # a lost card is replaced after blocking
    with pytest.raises(CardNotActive) as caught:
        card_replace(card=card)
    assert caught.value.code == "card_replaced"
    assert card_active_member(new.number) == member
    assert member.cards.count() == 2


def test_unknown_card_is_not_found_and_spaces_are_ignored():
    member = member_enrol(email="c@example.nl")
    number = member.cards.get().number
    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    assert card_active_member(spaced) == member
    with pytest.raises(CardNotFound) as caught:
        card_active_member("0000000000000000")
    assert caught.value.code == "card_not_found"


# --- consents ---
