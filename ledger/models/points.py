"""The points ledger: accounts, append-only entries, lots, holds and the records that move points.

Invariants and where they are held:
- ``Account.balance`` is a stored total. It equals the sum of the account's entries and, when not
  negative, the sum of its lots' ``remaining`` (a negative balance has no lots left). Every change
  happens in ``ledger.services`` under ``select_for_update`` on the account row, and
  ``manage.py ledger_reconcile`` checks it nightly.
- Entries are never updated or deleted: a trigger (migration 0002) refuses it, on PostgreSQL and
  on SQLite alike. A correction is a new entry with ``refers_to``.
- The balance rule: a debit may not take the balance below zero, except a ``reverse`` (a return's
  clawback). Rather than a flag on the account, the rule sits on the entry that moves the
  balance: ``entry_debit_not_below_zero`` requires ``balance_after >= 0`` for every negative
  entry that is not a reverse. A negative balance can therefore only come from a reverse, and an
  earn while in debt (positive amount) may still leave it negative while it pays the debt back.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ledger.reasons import reason_render
from members.models import Member

# The reason codes most entries carry (staff's typed reasons have none): entry_reason_recent
# leaves them out.
ENTRY_REASONS_COMMON = ("", "purchase", "engagement")


class Account(models.Model):
    member = models.OneToOneField(
        Member, on_delete=models.PROTECT, related_name="account", verbose_name=_("member")
    )
    # balance = spendable + held points, == the sum of the entries.
    balance = models.BigIntegerField(_("balance"), default=0)
    # Earned but not yet spendable (PendingEarn rows still pending); not part of balance.
    pending = models.BigIntegerField(_("pending points"), default=0)
    # Reserved by open holds; part of balance, not available.
    held = models.BigIntegerField(_("held points"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    # The date of the newest entry that took the balance below zero, added to the debt or paid
    # some of it; null when never in debt. No credit is dated earlier (ledger.services.posting,
    # "Dates"): points dated before a debt would have paid it, which the lots cannot redo.
    debt_moved_at = models.DateTimeField(_("debt last moved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(pending__gte=0),
                name="account_pending_gte_0",
                violation_error_message=_("Pending points cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(held__gte=0),
                name="account_held_gte_0",
                violation_error_message=_("Held points cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} ({self.balance})"

    @property
    def available(self) -> int:
        return self.balance - self.held


class Entry(models.Model):
    class Kind(models.TextChoices):
        EARN = "earn", _("Earn")
        REDEEM = "redeem", _("Redeem")
        ADJUST = "adjust", _("Adjustment")
        EXPIRE = "expire", _("Expiry")
        REVERSE = "reverse", _("Reversal")
        TRANSFER = "transfer", _("Transfer")

    # No index of its own: entry_account_recent starts with it.
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=_("account"),
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField(_("points"))
    balance_after = models.BigIntegerField(_("balance after"))
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    # PROTECT: entries cannot be updated, so a SET_NULL on user deletion would be refused anyway.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    # What staff typed; a reason the system gives is a code with parameters (ledger.reasons).
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True, default="")
    reason_params = models.JSONField(_("reason parameters"), default=dict, blank=True)
    refers_to = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        verbose_name=_("refers to"),
    )
    explanation = models.JSONField(_("explanation"), default=list, blank=True)
    purchase = models.ForeignKey(
        "Purchase",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("purchase"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-id"], name="entry_account_recent"),
            models.Index(fields=["reference"], name="entry_reference"),
            # The ledger page's kind filter, newest first. Earns are most entries and the
            # created_at index finds a page of them at once; every other kind is rare enough
            # that, without this, a page of them is a scan of the table. Partial: an earn
            # (the hot insert) writes no entry here.
            models.Index(
                fields=["kind", "-created_at", "-id"],
                name="entry_kind_recent",
                condition=~Q(kind="earn"),
            ),
            # A member's entries over a period without reading the table (PostgreSQL: an
            # index-only scan). The tier recalculation sums a chunk of accounts at a time:
            # entries lie in the table in time order, so reading a chunk's from the table would
            # touch most of its pages for every chunk.
            models.Index(
                fields=["account", "created_at"],
                include=["kind", "amount", "refers_to"],
                name="entry_account_period",
            ),
            # The admin's reason-code filter, newest first, as entry_kind_recent for kinds: a
            # page of a rare code (a birthday, a referral) was a scan of every entry. Partial:
            # the hot earns (a purchase, an engagement) and staff's own reasons write nothing
            # here; their codes are common enough that the created_at index finds a page.
            models.Index(
                fields=["reason_code", "-created_at", "-id"],
                name="entry_reason_recent",
                # Inequalities, not NOT IN: PostgreSQL prints an IN's array back in another
                # form than it was given, and bench/generate.py rebuilds indexes from that print.
                condition=Q(*(~Q(reason_code=code) for code in ENTRY_REASONS_COMMON)),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0),
                name="entry_amount_not_0",
                violation_error_message=_("An entry must move a number of points other than zero."),
            ),
            # Invariant 7: a staff adjustment always names its staff user and its reason.
            models.CheckConstraint(
                condition=~Q(kind="adjust") | (Q(actor__isnull=False) & ~Q(reason="")),
                name="entry_adjust_has_actor_and_reason",
                violation_error_message=_("A staff adjustment needs a staff user and a reason."),
            ),
            # The balance rule (invariant 2), see the module docstring.
            models.CheckConstraint(
                condition=Q(amount__gt=0) | Q(kind="reverse") | Q(balance_after__gte=0),
                name="entry_debit_not_below_zero",
                violation_error_message=_("This debit would take the balance below zero."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+d}"

    @property
    def reason_text(self) -> str:
        """The reason in the active language (see ``ledger.reasons``)."""
        return reason_render(code=self.reason_code, params=self.reason_params, reason=self.reason)


class Lot(models.Model):
    """Points earned together, spent and expired oldest first."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="lots", verbose_name=_("account")
    )
    entry = models.OneToOneField(
        Entry, on_delete=models.PROTECT, related_name="lot", verbose_name=_("entry")
    )
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    earned_at = models.DateTimeField(_("earned at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # Set when the expiry run took this lot's remainder: a lot expires at most once.
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        ordering = ["earned_at", "id"]
        indexes = [
            models.Index(
                fields=["account", "earned_at", "id"],
                name="lot_open_fifo",
                condition=Q(remaining__gt=0),
            ),
            models.Index(
                fields=["expires_at"], name="lot_open_expiry", condition=Q(remaining__gt=0)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gt=0),
                name="lot_points_gt_0",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")),
                name="lot_remaining_between_0_and_points",
                violation_error_message=_(
                    "A lot's remaining points must be between 0 and its points."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.points}"


class Hold(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        POSTED = "posted", _("Posted")
        VOIDED = "voided", _("Voided")
        EXPIRED = "expired", _("Expired")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="holds", verbose_name=_("account")
    )
    points = models.BigIntegerField(_("points"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    entry = models.OneToOneField(
        Entry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="hold",
        verbose_name=_("entry"),
    )

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        indexes = [
            models.Index(fields=["expires_at"], name="hold_open_expiry", condition=Q(status="open"))
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gt=0),
                name="hold_points_gt_0",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
            # Posted <=> has its entry.
            models.CheckConstraint(
                condition=Q(status="posted", entry__isnull=False)
                | (~Q(status="posted") & Q(entry__isnull=True)),
                name="hold_posted_has_entry",
                violation_error_message=_("A hold has an entry exactly when it is posted."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points} ({self.get_status_display()})"


class PendingEarn(models.Model):
    """Points earned but spendable only from ``matures_at`` (e.g. after a return window)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        MATURED = "matured", _("Matured")
        CANCELLED = "cancelled", _("Cancelled")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="pending_earns", verbose_name=_("account")
    )
    points = models.BigIntegerField(_("points"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    matures_at = models.DateTimeField(_("matures at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    # Copied onto the entry when the points mature.
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True, default="")
    reason_params = models.JSONField(_("reason parameters"), default=dict, blank=True)
    explanation = models.JSONField(_("explanation"), default=list, blank=True)
    purchase = models.ForeignKey(
        "Purchase",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pending_earns",
        verbose_name=_("purchase"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    entry = models.OneToOneField(
        Entry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pending_earn",
        verbose_name=_("entry"),
    )

    class Meta:
        verbose_name = _("pending points")
        verbose_name_plural = _("pending points")
        indexes = [
            models.Index(fields=["matures_at"], name="pending_due", condition=Q(status="pending"))
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gt=0),
                name="pending_points_gt_0",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points} ({self.get_status_display()})"

    @property
    def reason_text(self) -> str:
        return reason_render(code=self.reason_code, params=self.reason_params, reason=self.reason)


class AdjustmentRequest(models.Model):
    """A staff adjustment above the approval threshold, waiting for a second staff user."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="adjustment_requests",
        verbose_name=_("account"),
    )
    points = models.BigIntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=255)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.CharField(_("decision reason"), max_length=255, blank=True)
    entry = models.OneToOneField(
        Entry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adjustment_request",
        verbose_name=_("entry"),
    )

    class Meta:
        verbose_name = _("adjustment request")
        verbose_name_plural = _("adjustment requests")
        permissions = [("approve_adjustmentrequest", _("Can approve or reject adjustments"))]
        constraints = [
            models.CheckConstraint(
                condition=~Q(points=0),
                name="adjreq_points_not_0",
                violation_error_message=_("The adjustment must be a whole number other than zero."),
            ),
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="adjreq_reason_required",
                violation_error_message=_("Give a reason for the adjustment."),
            ),
            # Four eyes, held by the database too.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="adjreq_not_self_decided",
                violation_error_message=_("Another staff user must decide on this request."),
            ),
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(entry__isnull=False),
                name="adjreq_approved_has_entry",
                violation_error_message=_("An approved adjustment must have its entry."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points:+d} ({self.get_status_display()})"


class IdempotencyRecord(models.Model):
    """A channel request's first answer, replayed when the same key comes again."""

    channel = models.CharField(_("channel"), max_length=64)
    key = models.CharField(_("key"), max_length=255)
    fingerprint = models.CharField(_("request fingerprint"), max_length=128)
    # Null while the request that claimed the key is still running.
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True)
    response_body = models.JSONField(_("response body"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "key"],
                name="idempotency_channel_key",
                violation_error_message=_("This idempotency key was already used."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.key}"
