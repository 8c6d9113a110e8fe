import io
import re
from pathlib import Path

import pytest
import tablib
from django.core.management import CommandError, call_command

from ledger.models import AdjustmentRequest, Entry
from ledger.selectors import balance_summary
from members.models import Card, Member

pytestmark = pytest.mark.django_db

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "members" / "fixtures" / "legacy_members_example.csv"
)
HEADER = (
    "external_id,email,first_name,last_name,phone,birth_date,locale,card_number,opening_balance"
)


def _write(tmp_path, *rows, name="legacy.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _run(path, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_members", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _snapshot():
    return (
        sorted(Member.objects.values_list("external_id", "email", "phone", "first_name")),
        sorted(Card.objects.values_list("number", "status")),
        sorted(Entry.objects.values_list("reference", "amount", "reason")),
        AdjustmentRequest.objects.count(),
    )


def test_import_creates_members_cards_and_opening_balances():
    out, _err = _run(EXAMPLE)
    assert "new: 3" in out
    anna = Member.objects.get(external_id="LEGACY-0001")
    assert anna.email == "anna.de.vries@example.nl"
    assert str(anna.phone) == "+31612345678"
    assert anna.cards.filter(number="4111111111111111", status="active").exists()
    entry = Entry.objects.get(account__member=anna)
    assert (entry.kind, entry.amount, entry.reason, entry.reference) == (
        "adjust",
        250,
        "import: legacy_members_example.csv",
        "import:LEGACY-0001",
    )
    assert balance_summary(member=anna)["balance"] == 250
    # Without a legacy card number the member gets a new one.
    assert Member.objects.get(external_id="LEGACY-0002").cards.count() == 1
    # Above the approval threshold an opening balance waits for a second staff user.
    sophie = Member.objects.get(external_id="LEGACY-0003")
    request = AdjustmentRequest.objects.get(account__member=sophie)
    assert (request.points, request.reason) == (1200, "import: legacy_members_example.csv")


def test_importing_the_same_file_twice_changes_nothing():
    _run(EXAMPLE)
    before = _snapshot()
    out, _err = _run(EXAMPLE)
    assert "skip: 3" in out
    assert _snapshot() == before


def test_a_changed_row_updates_the_member_without_posting_the_balance_again(tmp_path):
    _run(_write(tmp_path, "L1,a@example.nl,Anna,Smit,,,,,100"))
    _run(_write(tmp_path, "L1,a@example.nl,Anna,de Smit,,,,,100"))
    member = Member.objects.get(external_id="L1")
    assert member.last_name == "de Smit"
    assert list(Entry.objects.values_list("amount", flat=True)) == [100]


def test_dry_run_shows_what_would_change_and_writes_nothing():
    out, _err = _run(EXAMPLE, "--dry-run")
    assert "dry run" in out and "new: 3" in out
    assert Member.objects.count() == 0
    assert Entry.objects.count() == 0
    assert AdjustmentRequest.objects.count() == 0


def test_row_errors_are_reported_per_row_and_nothing_is_written(tmp_path):
    path = _write(
        tmp_path,
        "L1,good@example.nl,Good,Row,,,,,10",
        "L2,not-an-email,Bad,Mail,,,,,0",
        "L3,c@example.nl,Bad,Phone,12,,,,0",
        "L4,d@example.nl,Bad,Card,,,,4111111111111112,0",
        "L5,e@example.nl,Bad,Points,,,,,-5",
        ",f@example.nl,No,Key,,,,,0",
        "L7,GOOD@example.nl,Same,Mail,,,,,0",
    )
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command(
            "import_members", str(path), stdout=io.StringIO(), stderr=(err := io.StringIO())
        )
    lines = err.getvalue().splitlines()
    assert any(line.startswith("row 2: email") for line in lines)
    assert any(line.startswith("row 3: phone") for line in lines)
    assert any(line.startswith("row 4: card_number") for line in lines)
    assert any(line.startswith("row 5: opening_balance") for line in lines)
    assert any(line.startswith("row 6: external_id") for line in lines)
    assert any(line.startswith("row 7:") and "e-mail" in line for line in lines)
    assert not any(line.startswith("row 1:") for line in lines)
    assert Member.objects.count() == 0
    assert Entry.objects.count() == 0


def test_xlsx_files_import_too(tmp_path):
    dataset = tablib.Dataset(headers=HEADER.split(","))
    dataset.append(["X1", "x@example.nl", "Xena", "Bos", "0612345679", "1990-01-02", "nl", "", 5])
    path = tmp_path / "legacy.xlsx"
    path.write_bytes(dataset.export("xlsx"))
    _run(path)
    member = Member.objects.get(external_id="X1")
    assert str(member.birth_date) == "1990-01-02"
    assert balance_summary(member=member)["balance"] == 5


def test_unknown_file_type_is_refused(tmp_path):
    path = tmp_path / "legacy.txt"
    path.write_text("x")
    with pytest.raises(CommandError, match="csv"):
        _run(path)


def test_an_import_does_not_bring_an_erased_member_back(tmp_path):
    from loyalty_site.privacy import member_erase
    from members.models import ErasedIdentity
    from members.selectors import identity_digest
    from members.services import member_enrol
    from tests.factories import UserFactory

    _run(EXAMPLE)
    anna = Member.objects.get(external_id="LEGACY-0001")
    member_erase(member=anna, actor=UserFactory(), reason="request by e-mail")
    # Digests of her e-mail, phone and external id, not the values themselves.
    digests = set(ErasedIdentity.objects.values_list("digest", flat=True))
    assert digests == {
        identity_digest("email", "anna.de.vries@example.nl"),
        identity_digest("phone", "+31612345678"),
        identity_digest("external_id", "LEGACY-0001"),
    }
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in digests)

    before = _snapshot()
    out, _err = _run(EXAMPLE)
    assert "new: 0" in out and "1 row(s) of erased members left out" in out
    # Found by any one of the three: her e-mail, or her phone written another way, under
    # other external ids.
    other = _write(
        tmp_path,
        "NEW-9,ANNA.de.vries@example.nl,Anna,de Vries,,,nl,,0",
        "NEW-10,a.devries@example.org,A.,de Vries,+31 6 12345678,,nl,,0",
        name="other.csv",
    )
    out, _err = _run(other)
    assert "skip: 2" in out
    assert _snapshot() == before
    # She may still come back herself.
    assert member_enrol(email="anna.de.vries@example.nl").status == Member.Status.ACTIVE


def test_row_errors_follow_the_language(tmp_path):
    from django.utils import translation

    path = _write(tmp_path, "L2,not-an-email,Bad,Mail,,,,,0")
    with translation.override("nl"), pytest.raises(CommandError):
        call_command(
            "import_members", str(path), stdout=io.StringIO(), stderr=(err := io.StringIO())
        )
    assert "Geen geldig e-mailadres." in err.getvalue()


def test_birth_dates_outside_a_lifetime_and_huge_balances_are_row_errors(tmp_path, settings):
    from django.utils import timezone

    settings.LOYALTY_ADJUSTMENT_MAX_POINTS = 1000
    tomorrow = timezone.localdate().replace(year=timezone.localdate().year + 1)
    path = _write(
        tmp_path,
        "B1,b1@example.nl,Old,Typo,,0199-05-01,,,0",
        f"B2,b2@example.nl,Not,Born,,{tomorrow.isoformat()},,,0",
        "B3,b3@example.nl,Not,Adate,,1990-02-30,,,0",
        "B4,b4@example.nl,Too,Rich,,1990-02-03,,,1001",
        "B5,b5@example.nl,Fine,Row,,1990-02-03,,,1000",
    )
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command(
            "import_members", str(path), stdout=io.StringIO(), stderr=(err := io.StringIO())
        )
    lines = err.getvalue().splitlines()
    for row in (1, 2):
        assert any(
            line.startswith(f"row {row}: birth_date") and "between" in line for line in lines
        ), lines
    assert any(line.startswith("row 3: birth_date") for line in lines)
    assert any(line.startswith("row 4: opening_balance") and "1000" in line for line in lines)
    assert not any(line.startswith("row 5:") for line in lines)
    assert Member.objects.count() == 0 and Entry.objects.count() == 0
