import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField


class Tier(models.Model):
    """A step of the tier ladder; a higher rank is a better tier."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True)
    threshold = models.PositiveIntegerField(
        _("qualifying points"),
        help_text=_("Qualifying points needed within the window to reach this tier."),
    )
    window_months = models.PositiveSmallIntegerField(
        _("window (months)"),
        default=12,
        help_text=_("Qualifying points count over this many months back from today."),
    )
    earn_multiplier = models.DecimalField(
        _("earn multiplier"), max_digits=5, decimal_places=2, default=1
    )
    benefits = models.TextField(_("benefits"), blank=True)
    downgrade_grace_days = models.PositiveIntegerField(
        _("downgrade grace (days)"),
        default=0,
        help_text=_("How long a member keeps this tier after falling below its threshold."),
    )

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(
                condition=Q(earn_multiplier__gt=0),
                name="tier_earn_multiplier_gt_0",
                violation_error_message=_("The earn multiplier must be more than 0."),
            ),
            models.CheckConstraint(
                condition=Q(window_months__gte=1),
                name="tier_window_gte_1",
                violation_error_message=_("The window must be at least 1 month."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")
        ERASED = "erased", _("Erased")

    # The bigint key stays internal (ledger rows refer to it); channels only see public_id.
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(_("external customer number"), max_length=64, blank=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    # Stored lower-cased and stripped by the services (members.normalise).
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    # Stored in E.164 ("+31612345678"); "" when unknown.
    phone = PhoneNumberField(_("phone"), blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    locale = models.CharField(_("language"), max_length=16, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    enrolled_at = models.DateTimeField(_("enrolled at"), default=timezone.now)
    enrolled_channel = models.CharField(_("enrolled through"), max_length=64, blank=True)
    tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("tier"),
    )
    tier_since = models.DateTimeField(_("tier since"), null=True, blank=True)
    # When the member first fell below the current tier's threshold; the downgrade waits for
    # the tier's grace period counted from here. NULL while the member qualifies.
    tier_below_since = models.DateTimeField(_("below tier threshold since"), null=True, blank=True)
    # The "golden profile": free-form attributes that events and imports enrich.
    profile = models.JSONField(_("profile attributes"), default=dict, blank=True)
    # The member's latest Net Promoter answer (0–10) and when it was given, kept by the
    # engagement service from survey events so that segments filter on a column, not a subquery.
    nps_score = models.PositiveSmallIntegerField(
        _("latest NPS score"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(10)],
        help_text=_("0–10, from the member's latest survey answer."),
    )
    nps_at = models.DateTimeField(_("NPS answered at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        permissions = [
            ("export_member", _("Can export a member's personal data")),
            ("erase_member", _("Can erase a member's personal data")),
        ]
        indexes = [
            # The dashboard counts the day's enrolments.
            models.Index(fields=["enrolled_at"], name="member_enrolled"),
            # The admin's status filter, newest first: blocked and erased members are few, and
            # a page of them was a scan of every member. Active members write nothing here.
            models.Index(
                fields=["status", "-id"], name="member_status_rare", condition=~Q(status="active")
            ),
        ]
        constraints = [
            # E-mail is unique regardless of case; erased members keep an empty e-mail. The
            # expression index also serves the admin's exact e-mail search.
            models.UniqueConstraint(
                Lower("email"),
                name="member_email_ci_unique",
                violation_error_message=_("A member with this e-mail address is already enrolled."),
                condition=~Q(email=""),
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                name="member_external_id_unique",
                violation_error_message=_(
                    "A member with this external customer number exists already."
                ),
                condition=~Q(external_id=""),
            ),
            models.UniqueConstraint(
                fields=["phone"],
                name="member_phone_unique",
                violation_error_message=_("A member with this phone number is already enrolled."),
                condition=~Q(phone=""),
            ),
            models.CheckConstraint(
                condition=Q(nps_score__isnull=True) | Q(nps_score__gte=0, nps_score__lte=10),
                name="member_nps_score_range",
                violation_error_message=_("An NPS score is a whole number from 0 to 10."),
            ),
            # A score without its date could not be compared with a later answer.
            models.CheckConstraint(
                condition=Q(nps_score__isnull=True, nps_at__isnull=True)
                | Q(nps_score__isnull=False, nps_at__isnull=False),
                name="member_nps_score_dated",
                violation_error_message=_(
                    "An NPS score and the time it was given are set together."
                ),
            ),
        ]
        # The tier's own foreign-key index serves the lookups by tier.

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or str(self.public_id)


class Card(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")
        REPLACED = "replaced", _("Replaced")

    number = models.CharField(_("card number"), max_length=19, unique=True)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="cards", verbose_name=_("member")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replaces",
        verbose_name=_("replaced by"),
    )

    class Meta:
        verbose_name = _("card")
        verbose_name_plural = _("cards")
        constraints = [
            models.CheckConstraint(
                condition=Q(replaced_by__isnull=True) | Q(status="replaced"),
                name="card_replaced_by_only_when_replaced",
                violation_error_message=_("Only a replaced card names the card that replaces it."),
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Consent(models.Model):
    """One grant or withdrawal; the current state of a purpose is its latest record."""

    class Purpose(models.TextChoices):
        MARKETING_EMAIL = "marketing_email", _("Marketing e-mail")
        SMS = "sms", _("SMS")
        PUSH = "push", _("Push notifications")
        PROFILING = "profiling", _("Profiling")
        PARTNER_SHARING = "partner_sharing", _("Sharing with partners")

    class Action(models.TextChoices):
        GRANT = "grant", _("Granted")
        WITHDRAW = "withdraw", _("Withdrawn")

    # No index of its own: consent_latest starts with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="consents",
        verbose_name=_("member"),
        db_index=False,
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    wording_version = models.CharField(_("wording version"), max_length=32, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["member", "purpose", "-at", "-id"], name="consent_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()}: {self.get_action_display()}"


class TierHistory(models.Model):
    class Reason(models.TextChoices):
        ENROL = "enrol", _("Entry tier at enrolment")
        QUALIFIED = "qualified", _("Reached the threshold (recalculation)")
        EARN = "earn", _("Reached the threshold on earn")
        DOWNGRADE = "downgrade", _("Below the threshold after the grace period")
        STAFF = "staff", _("Set by staff")
        IMPORT = "import", _("Import")

    # No index of its own: tierhistory_member_recent starts with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="tier_history",
        verbose_name=_("member"),
        db_index=False,
    )
    from_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from tier"),
    )
    to_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("to tier"),
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=255, blank=True)
    qualifying_points = models.BigIntegerField(_("qualifying points"), null=True, blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier history")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "-at"], name="tierhistory_member_recent")]

    def __str__(self) -> str:
        return f"{self.from_tier or '-'} → {self.to_tier or '-'}"


class AuditEntry(models.Model):
    """Who changed what about a member, when and why. Holds no personal data itself."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    action = models.CharField(_("action"), max_length=64)
    # No index of its own: audit_member_recent starts with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
        verbose_name=_("member"),
        db_index=False,
    )
    reason = models.TextField(_("reason"), blank=True)
    # Names of changed fields, ids, counts: never the personal values themselves, so that an
    # erasure does not leave them behind here.
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "-at"], name="audit_member_recent")]

    def __str__(self) -> str:
        return f"{self.action} @ {self.at:%Y-%m-%d %H:%M}"


class ErasedIdentity(models.Model):
    """A one-way digest of an erased member's e-mail, phone or external id.

    Kept so that importing an old file again does not bring an erased person back (the import
    leaves such rows out). The digest cannot be turned back into the value; the person may still
    enrol again themselves.
    """

    digest = models.CharField(_("digest"), max_length=64, unique=True)
    erased_at = models.DateTimeField(_("erased at"), default=timezone.now)

    class Meta:
        verbose_name = _("erased identity")
        verbose_name_plural = _("erased identities")

    def __str__(self) -> str:
        return self.digest[:12]


class BackgroundJob(models.Model):
    """Long work a staff user started from a page (a simulation over a year, a large export).

    It runs in a Celery worker (members.background), never inside the request; the page polls its
    progress and shows its result or offers its file. Only the staff user who started it sees it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=64)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("started by"),
        db_index=False,  # job_user_recent starts with it
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    done = models.PositiveBigIntegerField(_("done"), default=0)
    total = models.PositiveBigIntegerField(_("total"), null=True, blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    file = models.FileField(_("file"), upload_to="jobs/%Y/%m/", blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("background job")
        verbose_name_plural = _("background jobs")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["requested_by", "-created_at"], name="job_user_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total__isnull=True) | Q(done__lte=models.F("total")),
                name="job_done_within_total",
                violation_error_message=_("A job cannot have done more than its total."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.status == self.Status.DONE else None
        return min(100, self.done * 100 // self.total)
