"""factory-boy factories shared by the whole suite. Each app's tests may add their own here."""

import factory
from django.contrib.auth import get_user_model

from members import cardnumbers
from members.models import Card, Member


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    first_name = factory.Faker("first_name", locale="nl_NL")
    last_name = factory.Faker("last_name", locale="nl_NL")
    email = factory.Sequence(lambda n: f"member{n}@example.nl")


class CardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Card

    member = factory.SubFactory(MemberFactory)
    number = factory.LazyFunction(cardnumbers.generate)
