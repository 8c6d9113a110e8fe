"""Factories for the campaigns tests."""

from decimal import Decimal

import factory

from campaigns.models import Badge, Challenge, EarningRule, EngagementKind


class EarningRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EarningRule
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = EarningRule.Kind.RATE
    rate = Decimal(1)


class EngagementKindFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EngagementKind
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"kind-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    points = 10


class BadgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Badge

    code = factory.Sequence(lambda n: f"badge-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())


class ChallengeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Challenge

    name = factory.Sequence(lambda n: f"Challenge {n}")
    goal = Challenge.Goal.PURCHASE_COUNT
    target = Decimal(3)
    reward_points = 100
