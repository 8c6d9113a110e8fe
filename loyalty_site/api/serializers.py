"""Request and response shapes of the channel API.

Request serializers refuse fields they do not know, so a body that tries to set `balance`,
`tier`, `status` or `points` is answered 400 instead of being silently half-accepted.
"""

import itertools
import json
import re
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import format_lazy
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import relations, serializers
from rest_framework.utils.serializer_helpers import BindingDict

from ledger import errors as ledger_errors
from ledger.reasons import REASONS
from members.models import Consent

# Fields that read their serializer instance or its context when they run: they cannot be
# shared between instances.
_PER_INSTANCE_FIELDS = (
    serializers.SerializerMethodField,
    serializers.HiddenField,
    relations.RelatedField,
    relations.ManyRelatedField,
)


# A plain serializer whose fields are built and bound once per class and language. DRF
# deep-copies and binds every declared field for each serializer instance: about 5% of an earn's
# CPU time. The fields of these serializers keep no per-request state (no method or related
# fields, no context), so one bound set serves every instance; a field that would need its own
# instance is refused when the set is built, and the set is bound to an empty instance. One set
# per language, because DRF formats some validation messages once and keeps the text
# (`lazy_format`). (No docstring: drf-spectacular would publish it as the description of every
# serializer in the schema.)
class ApiSerializer(serializers.Serializer):
    @cached_property
    def fields(self):
        cls = type(self)
        built = cls.__dict__.get("_bound_fields")
        if built is None:
            built = {}
            cls._bound_fields = built
        language = get_language()
        fields = built.get(language)
        if fields is None:
            # Bound to an empty instance, not to this one: the shared fields must not keep this
            # request's data (a member's e-mail, say) alive for the life of the process.
            template = cls()
            fields = BindingDict(template)
            for name, field in template.get_fields().items():
                if isinstance(field, _PER_INSTANCE_FIELDS):
                    raise ImproperlyConfigured(
                        f"{cls.__name__}.{name}: a {type(field).__name__} cannot be shared "
                        "between instances; use a plain serializers.Serializer."
                    )
                fields[name] = field
            built[language] = fields
        return fields


# The columns' ranges: an id is a bigint, a count an integer.
BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1
MAX_AGE_YEARS = 120

# How many unknown keys an error names, and how much of each: a body with 150,000 unknown keys
# must cost one set difference and answer a few lines, not a 6 MB error.
UNKNOWN_KEYS_SHOWN = 5
_KEY_CHARS_SHOWN = 64


def _key_shown(name) -> str:
    name = str(name)[:_KEY_CHARS_SHOWN]
    return name if name.isprintable() else json.dumps(name)[1:-1]


class StrictSerializer(ApiSerializer):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            # Counted from the few known fields, so the cost does not grow with the body's keys.
            fields = self.fields
            unknown = len(data) - sum(1 for name in fields if name in data)
            if unknown:
                shown = list(
                    itertools.islice(
                        (name for name in data if name not in fields), UNKNOWN_KEYS_SHOWN
                    )
                )
                errors = {_key_shown(name): [_("Unknown or read-only field.")] for name in shown}
                if unknown > len(shown):
                    errors["non_field_errors"] = [
                        _("%(count)s unknown or read-only fields; the first %(shown)s are named.")
                        % {"count": unknown, "shown": len(shown)}
                    ]
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


# --- money ---

# An amount is a string to the cent, without sign, exponent or leading zeros ("12.50", "3",
# "0.99"): what the schema's pattern says is exactly what is accepted, so that a channel (and a
# fuzzer) can tell from the schema alone whether an amount will do.
_INTEGER_PART = r"(?:0|[1-9]\d{0,9})"
_CENTS = r"(?:\.\d{1,2})?"
AMOUNT_PATTERN = rf"^{_INTEGER_PART}{_CENTS}$"
POSITIVE_AMOUNT_PATTERN = rf"^(?:[1-9]\d{{0,9}}{_CENTS}|0\.(?:[1-9]\d?|0[1-9]))$"


def amount_pattern_up_to(limit: Decimal) -> str:
    """The pattern of an amount from 0 to `limit`: exact when `limit` is a power of ten (the
    default maximum), else bounded by its number of digits (the value is checked all the same)."""
    whole = int(limit)
    digits = len(str(whole))
    if limit == whole and whole == 10 ** (digits - 1) and digits > 1:
        return rf"^(?:(?:0|[1-9]\d{{0,{digits - 2}}}){_CENTS}|{whole}(?:\.0{{1,2}})?)$"
    return rf"^(?:0|[1-9]\d{{0,{digits - 1}}}){_CENTS}$"


class AmountField(serializers.DecimalField):
    """A money amount as a string matching `pattern`; the schema publishes the same pattern."""

    def __init__(self, *, pattern: str = AMOUNT_PATTERN, **kwargs):
        self.pattern = pattern
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(self.pattern, data):
            raise serializers.ValidationError(
                _('Give the amount as a string to the cent, such as "12.50".')
            )
        return super().to_internal_value(data)


class CurrencyField(serializers.RegexField):
    """A three-letter code; only the programme's currency is accepted (422 otherwise, by the
    ledger), and the schema names it as the one value."""

    def __init__(self, **kwargs):
        super().__init__(r"^[A-Z]{3}$", **kwargs)


# --- members ---


@extend_schema_field(
    {
        "type": "object",
        "properties": {purpose: {"type": "boolean"} for purpose in Consent.Purpose.values},
        "additionalProperties": False,
    }
)
class ConsentsField(serializers.DictField):
    """Purpose -> granted; the schema names the purposes (others are refused)."""


class MemberEnrolSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    consents = ConsentsField(
        child=serializers.BooleanField(),
        required=False,
        help_text=format_lazy(
            _("Purpose → granted, for: {purposes}."), purposes=", ".join(Consent.Purpose.values)
        ),
    )
    referral_code = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate_birth_date(self, value):
        today = timezone.localdate()
        try:
            oldest = today.replace(year=today.year - MAX_AGE_YEARS)
        except ValueError:  # 29 February
            oldest = today.replace(year=today.year - MAX_AGE_YEARS, day=28)
        if value is not None and not oldest <= value <= today:
            raise serializers.ValidationError(
                _("Give a birth date between %(oldest)s and today.") % {"oldest": oldest}
            )
        return value

    def validate_consents(self, value):
        unknown = sorted(set(value) - set(Consent.Purpose.values))
        if unknown:
            raise serializers.ValidationError(
                _("Unknown purposes: %(names)s.") % {"names": ", ".join(unknown)}
            )
        return value


class CardSerializer(ApiSerializer):
    number = serializers.CharField()
    status = serializers.CharField()


class MemberSerializer(ApiSerializer):
    id = serializers.UUIDField(source="public_id")
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    external_id = serializers.CharField()
    status = serializers.CharField()
    balance = serializers.IntegerField(help_text=_("Points on the account (incl. held)."))
    available = serializers.IntegerField(help_text=_("Points that can be spent now."))
    pending_points = serializers.IntegerField()
    tier = serializers.CharField(allow_null=True, help_text=_("The tier's name."))
    points_to_next_tier = serializers.IntegerField(allow_null=True)
    cards = CardSerializer(many=True)


class MemberEnrolledSerializer(MemberSerializer):
    card_number = serializers.CharField()


class EntrySerializer(ApiSerializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    points = serializers.IntegerField(source="amount")
    balance_after = serializers.IntegerField()
    channel = serializers.CharField()
    reference = serializers.CharField()
    reason = serializers.CharField(
        source="reason_text",
        help_text=_(
            "Why the points moved, in the request's language (Accept-Language: en or nl). For "
            "display only: read reason_code to act on it."
        ),
    )
    reason_code = serializers.CharField(
        help_text=format_lazy(
            _(
                "A stable code for a reason the system gave ({codes}; new codes may be added), "
                "or empty when staff typed the reason."
            ),
            codes=", ".join(REASONS),
        )
    )
    reason_params = serializers.DictField(
        help_text=_('The values the reason\'s text is made from, e.g. {"id": "R-1001"}.')
    )
    explanation = serializers.JSONField()
    created_at = serializers.DateTimeField()


# --- purchases ---


class PurchaseLineSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    amount = AmountField(help_text=_("What was paid for the line, after its discounts."))


class PurchaseCreateSerializer(StrictSerializer):
    member = serializers.UUIDField(required=False, help_text=_("The member's id, or:"))
    card_number = serializers.CharField(max_length=19, required=False)
    external_id = serializers.CharField(max_length=64, help_text=_("Unique per channel."))
    amount = AmountField(
        pattern=amount_pattern_up_to(settings.LOYALTY_PURCHASE_MAX_AMOUNT),
        help_text=_("What was paid; with lines, their sum to the cent."),
    )
    currency = CurrencyField(default=settings.LOYALTY_CURRENCY)
    store = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    lines = PurchaseLineSerializer(many=True, required=False, max_length=500)

    def validate_amount(self, value):
        limit = settings.LOYALTY_PURCHASE_MAX_AMOUNT
        if value > limit:
            raise serializers.ValidationError(
                _("Ensure this value is less than or equal to %(limit)s.") % {"limit": limit}
            )
        return value

    def validate_occurred_at(self, value):
        skew = timedelta(seconds=settings.LOYALTY_PURCHASE_CLOCK_SKEW_SECONDS)
        if value is not None and value > timezone.now() + skew:
            raise serializers.ValidationError(_("The purchase cannot have happened in the future."))
        return value

    def validate(self, attrs):
        if bool(attrs.get("member")) == bool(attrs.get("card_number")):
            raise serializers.ValidationError({"member": [_("Give either member or card_number.")]})
        lines = attrs.get("lines")
        if lines and sum(line["amount"] for line in lines) != attrs["amount"]:
            raise serializers.ValidationError(
                {"lines": [_("The lines' amounts must add up to the purchase's amount.")]}
            )
        occurred_at = attrs.get("occurred_at")
        channel = self.context.get("channel")
        if occurred_at is not None:
            days = getattr(channel, "late_purchase_days", None)
            if days is None:
                days = settings.LOYALTY_LATE_PURCHASE_DAYS
            # Older purchases would earn under rules that have ended since, and spread over
            # past days they would pass the velocity guards: an import's business, not a till's.
            if occurred_at < timezone.now() - timedelta(days=days):
                raise ledger_errors.PurchaseTooLate(
                    fields={"occurred_at": ledger_errors.PurchaseTooLate.default_detail}
                )
        return attrs


class RuleSerializer(ApiSerializer):
    rule = serializers.CharField()
    rule_id = serializers.IntegerField(allow_null=True, required=False)
    points = serializers.IntegerField()


class PurchaseResultSerializer(ApiSerializer):
    id = serializers.IntegerField()
    member = serializers.UUIDField()
    status = serializers.CharField(help_text=_("recorded, or under_review (points wait)."))
    points_earned = serializers.IntegerField()
    pending_points = serializers.IntegerField()
    rules = RuleSerializer(many=True)
    balance = serializers.IntegerField()


class ReturnLineSerializer(StrictSerializer):
    line = serializers.IntegerField(
        min_value=1, max_value=BIGINT_MAX, help_text=_("The purchase line's id.")
    )
    quantity = serializers.IntegerField(min_value=1, max_value=INTEGER_MAX)


class ReturnCreateSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    amount = AmountField(
        pattern=POSITIVE_AMOUNT_PATTERN,
        required=False,
        help_text=_("Part of the amount returned; leave out (and lines) for a full return."),
    )
    lines = ReturnLineSerializer(many=True, required=False, max_length=500)


class ReturnResultSerializer(ApiSerializer):
    id = serializers.IntegerField()
    purchase = serializers.IntegerField()
    points_reversed = serializers.IntegerField()
    balance = serializers.IntegerField()


# --- events ---


class EventCreateSerializer(StrictSerializer):
    kind = serializers.CharField(max_length=64, help_text=_("e.g. review, survey, referral."))
    member = serializers.UUIDField()
    reference = serializers.CharField(max_length=128, required=False, allow_blank=True)
    score = serializers.IntegerField(
        min_value=0,
        max_value=10,
        required=False,
        help_text=_(
            'The NPS answer, 0–10 ("How likely are you to recommend us?"): required for a '
            "kind that collects NPS (e.g. survey), refused for any other."
        ),
    )


class EventResultSerializer(ApiSerializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField(help_text=_("credited, or pending when it awaits approval."))
    points_earned = serializers.IntegerField()
    balance = serializers.IntegerField()
    score = serializers.IntegerField(
        allow_null=True, help_text=_("The NPS score recorded with the event, if any.")
    )


# --- rewards and redemptions ---


class RewardSerializer(ApiSerializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    points = serializers.IntegerField(help_text=_("The cost for this member."))


class OfferRedeemSerializer(ApiSerializer):
    method = serializers.CharField(help_text=_("POST"))
    path = serializers.CharField(help_text=_("/api/v1/redemptions/"))
    reward = serializers.IntegerField(help_text=_("The reward to send in the redemption."))
    identify_by = serializers.ChoiceField(
        choices=["member", "card_number"],
        help_text=_("Send the member's id, or (partner keys) the card number the member showed."),
    )


class OfferSerializer(ApiSerializer):
    reward = serializers.IntegerField(help_text=_("The reward's id."))
    kind = serializers.CharField()
    name = serializers.CharField(help_text=_("In the request's language."))
    description = serializers.CharField()
    points = serializers.IntegerField(help_text=_("The cost for this member."))
    campaign = serializers.IntegerField(help_text=_("The offer campaign's id."))
    rule = serializers.ChoiceField(
        choices=["top_category", "bought_category", "fallback"],
        help_text=_("Which of the campaign's options chose this offer."),
    )
    why = serializers.CharField(help_text=_("Why this member gets it, in the request's language."))
    valid_until = serializers.DateTimeField(
        allow_null=True, help_text=_("The campaign's end or the reward's, whichever is first.")
    )
    redeem = OfferRedeemSerializer(help_text=_("How to redeem it: the usual redemption call."))


class RedemptionCreateSerializer(StrictSerializer):
    member = serializers.UUIDField(required=False, help_text=_("The member's id, or:"))
    card_number = serializers.CharField(
        max_length=19, required=False, help_text=_("The member's card number (partner keys).")
    )
    reward = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text=_("A reward's id, or:")
    )
    points = serializers.IntegerField(
        required=False, min_value=1, max_value=10_000_000, help_text=_("Points to redeem.")
    )
    reserve = serializers.BooleanField(
        default=False,
        help_text=_("Only reserve (confirm or cancel later, e.g. at a till)."),
    )
    reference = serializers.CharField(max_length=128, required=False, allow_blank=True)

    def validate(self, attrs):
        if (attrs.get("reward") is None) == (attrs.get("points") is None):
            raise serializers.ValidationError({"reward": [_("Give either reward or points.")]})
        if (attrs.get("member") is None) == (attrs.get("card_number") is None):
            raise serializers.ValidationError({"member": [_("Give either member or card_number.")]})
        return attrs


class RedemptionSerializer(ApiSerializer):
    id = serializers.IntegerField()
    member = serializers.UUIDField()
    reward = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    points = serializers.IntegerField()
    code = serializers.CharField(allow_null=True, help_text=_("The voucher code, if any."))
    balance = serializers.IntegerField()
    available = serializers.IntegerField()
