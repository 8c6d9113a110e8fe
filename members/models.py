import uuid

from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


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
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    enrolled_at = models.DateTimeField(_("enrolled at"), auto_now_add=True)
    enrolled_channel = models.CharField(_("enrolled through"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            # E-mail is unique regardless of case; erased members keep an empty e-mail.
            models.UniqueConstraint(
                Lower("email"),
                name="member_email_ci_unique",
                condition=~models.Q(email=""),
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                name="member_external_id_unique",
                condition=~models.Q(external_id=""),
            ),
        ]

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
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)

    class Meta:
        verbose_name = _("card")
        verbose_name_plural = _("cards")

    def __str__(self) -> str:
        return self.number
