"""Import of a legacy programme's members, with their cards and opening balances.

One django-import-export resource serves the admin's import (dry run first, then confirm) and
``manage.py import_members``. It lives here, above the apps, because an opening balance is a
ledger entry and ``members`` may not import ``ledger``.

Columns: external_id (required: the key that makes a re-import change nothing), email,
first_name, last_name, phone, birth_date (YYYY-MM-DD), locale, card_number (optional, the legacy
card; digits with a valid Luhn check digit), opening_balance (optional, points >= 0).

Rules: e-mail and phone are normalised as at enrolment; a row that fails is reported with its
number and reason and nothing at all is written; an opening balance becomes one ``adjust``
entry with reason ``import: <file name>`` and reference ``import:<external_id>``, posted at most
once per member (above LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD it waits for a second staff user's
approval, like every large staff adjustment). A row whose external id, e-mail or phone belonged
to an erased member is left out (counted as skipped): an old file does not bring the person back.
"""

import re
from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from ledger.models import AdjustmentRequest, Entry
from ledger.services import points_adjust
from ledger.services.adjustments import adjustment_too_large
from loyalty_site.errors import DomainError
from members import cardnumbers
from members.errors import InvalidEmail, InvalidPhone
from members.models import Card, Member
from members.normalise import birth_date_refusal, email_normalise, phone_normalise
from members.selectors import identity_erased
from members.services import card_issue, member_enrol, member_update

IMPORT_USERNAME = "import"
MEMBER_FIELDS = ("email", "first_name", "last_name", "phone", "birth_date", "locale")


def import_actor():
    """The staff user that command-line imports are recorded under (inactive, cannot log in)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=IMPORT_USERNAME, defaults={"is_active": False, "first_name": "Import"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _card_number_valid(number: str) -> bool:
    return (
        8 <= len(number) <= 19
        and number.isdigit()
        and cardnumbers.luhn_check_digit(number[:-1]) == number[-1]
    )


class MemberImportResource(resources.ModelResource):
    card_number = fields.Field(column_name="card_number", attribute=None, readonly=True)
    opening_balance = fields.Field(column_name="opening_balance", attribute=None, readonly=True)
    birth_date = fields.Field(
        column_name="birth_date", attribute="birth_date", widget=widgets.DateWidget("%Y-%m-%d")
    )

    class Meta:
        model = Member
        import_id_fields = ("external_id",)
        fields = ("external_id", *MEMBER_FIELDS, "card_number", "opening_balance")
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = False
        use_transactions = True

    def __init__(self, *, actor=None, source: str = "import", progress=None, **kwargs):
        super().__init__(**kwargs)
        self.actor = actor
        self.source = source
        self.progress = progress
        self.erased_rows = 0

    # --- each row ---
    def before_import_row(self, row, **kwargs):
        errors = {}
        row["external_id"] = str(row.get("external_id") or "").strip()
        if not row["external_id"]:
            errors["external_id"] = _("Required.")
        for name in ("first_name", "last_name", "locale"):
            row[name] = str(row.get(name) or "").strip()
        try:
            row["email"] = email_normalise(str(row.get("email") or ""))
        except InvalidEmail:
            errors["email"] = _("Not a valid e-mail address.")
        try:
            row["phone"] = phone_normalise(str(row.get("phone") or ""))
        except InvalidPhone:
            errors["phone"] = _("Not a valid phone number.")
        card = re.sub(r"[\s-]", "", str(row.get("card_number") or ""))
        if card and not _card_number_valid(card):
            errors["card_number"] = _("Not a valid card number (digits with a Luhn check digit).")
        row["card_number"] = card
        raw_balance = str(row.get("opening_balance") or "").strip()
        try:
            balance = int(float(raw_balance)) if raw_balance else 0
            if balance < 0 or (raw_balance and float(raw_balance) != balance):
                raise ValueError
        except ValueError:
            errors["opening_balance"] = _("A whole number of points, 0 or more.")
            balance = 0
        row["opening_balance"] = balance
        if balance > settings.LOYALTY_ADJUSTMENT_MAX_POINTS:
            # Posted as a staff adjustment, which refuses more than this anyway.
            errors["opening_balance"] = adjustment_too_large()
        birth = row.get("birth_date")
        if birth and not isinstance(birth, date):  # a spreadsheet cell may hold a date already
            try:
                birth = date.fromisoformat(str(birth).strip())
            except ValueError:
                birth, errors["birth_date"] = None, _("Not a date (YYYY-MM-DD).")
        if isinstance(birth, datetime):
            birth = birth.date()
        refusal = birth_date_refusal(birth or None, today=timezone.localdate())
        if refusal:
            errors["birth_date"] = refusal
        if errors:
            raise ValidationError(errors)
        row["_erased"] = identity_erased(
            external_id=row["external_id"], email=row["email"], phone=row["phone"]
        )
        if row["_erased"]:
            self.erased_rows += 1

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if row.get("_erased") and not import_validation_errors:
            return True
        if import_validation_errors or original is None or not original.pk:
            return False
        if str(original.phone or "") != str(instance.phone or ""):
            return False
        if any(
            getattr(original, name) != getattr(instance, name)
            for name in MEMBER_FIELDS
            if name != "phone"
        ):
            return False
        return not self._card_missing(original, row) and not self._balance_missing(original, row)

    def _card_missing(self, member: Member, row) -> bool:
        number = row.get("card_number")
        return bool(number) and not Card.objects.filter(member=member, number=number).exists()

    def _balance_missing(self, member: Member, row) -> bool:
        return bool(row.get("opening_balance")) and not self._balance_posted(member, row)

    def _balance_posted(self, member: Member, row) -> bool:
        reference = f"import:{row['external_id']}"
        return (
            Entry.objects.filter(account__member=member, reference=reference).exists()
            or AdjustmentRequest.objects.filter(
                account__member=member, reason__startswith="import:"
            )
            .exclude(status=AdjustmentRequest.Status.REJECTED)
            .exists()
        )

    def save_instance(self, instance, is_create, row, **kwargs):
        try:
            if is_create:
                member = member_enrol(
                    email=instance.email,
                    first_name=instance.first_name,
                    last_name=instance.last_name,
                    external_id=instance.external_id,
                    phone=str(instance.phone or ""),
                    birth_date=instance.birth_date,
                    locale=instance.locale,
                    card_number=row.get("card_number") or None,
                    channel="import",
                    actor=self.actor,
                )
            else:
                member = member_update(
                    member=instance,
                    actor=self.actor,
                    reason=f"import: {self.source}",
                    email=instance.email,
                    first_name=instance.first_name,
                    last_name=instance.last_name,
                    phone=str(instance.phone or ""),
                    birth_date=instance.birth_date,
                    locale=instance.locale,
                )
                if self._card_missing(member, row):
                    card_issue(member=member, number=row["card_number"], actor=self.actor)
            if self._balance_missing(member, row):
                points_adjust(
                    member=member,
                    points=row["opening_balance"],
                    reason=f"import: {self.source}",
                    actor=self.actor or import_actor(),
                    reference=f"import:{row['external_id']}",
                )
        except DomainError as error:
            raise ValidationError(
                {name: str(message) for name, message in error.fields.items()} or str(error.detail)
            ) from None
        instance.pk = member.pk
        instance.public_id = member.public_id

    def after_import_row(self, row, row_result, **kwargs):
        if self.progress is not None:
            self.progress()
