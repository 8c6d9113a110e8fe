"""ApiSerializer: bound fields shared between instances, without sharing what must not be."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation
from rest_framework import serializers

from loyalty_site.api.serializers import ApiSerializer, PurchaseCreateSerializer

MEMBER = "7c1d1c59-0000-4000-8000-000000000000"


def body(**changes):
    return {"member": MEMBER, "external_id": "T-1", "amount": "5.00", **changes}


def test_fields_are_built_once_per_class_and_language():
    with translation.override("en"):
        first, second = PurchaseCreateSerializer(), PurchaseCreateSerializer(data=body())
        assert first.fields is second.fields
    with translation.override("nl"):
        assert PurchaseCreateSerializer().fields is not first.fields


def test_validation_state_stays_with_its_instance():
    bad = PurchaseCreateSerializer(data=body(amount="-1", lines=[{"sku": "", "amount": "x"}]))
    good = PurchaseCreateSerializer(data=body(lines=[{"sku": "A1", "amount": "5.00"}]))
    assert not bad.is_valid()
    assert good.is_valid(), good.errors
    assert set(bad.errors) == {"amount", "lines"}
    assert good.validated_data["lines"][0]["sku"] == "A1"
    assert good.validated_data["external_id"] == "T-1"


def test_messages_follow_the_language_of_each_request():
    # DRF formats a max_length message once and keeps the text: shared fields must not carry a
    # Dutch message into an English answer.
    too_long = body(external_id="x" * 65)
    with translation.override("nl"):
        serializer = PurchaseCreateSerializer(data=too_long)
        serializer.is_valid()
        dutch = str(serializer.errors["external_id"][0])
    with translation.override("en"):
        serializer = PurchaseCreateSerializer(data=too_long)
        serializer.is_valid()
        english = str(serializer.errors["external_id"][0])
    assert "64" in dutch and "64" in english
    assert english != dutch
    assert english.startswith("Ensure this field has no more than")


def test_a_field_that_needs_its_own_instance_is_refused():
    class Greeting(ApiSerializer):
        text = serializers.SerializerMethodField()

        def get_text(self, obj):  # pragma: no cover - never reached
            return "hi"

    with pytest.raises(ImproperlyConfigured, match="SerializerMethodField"):
        _ = Greeting().fields


def test_shared_fields_keep_no_request_data_alive():
    from loyalty_site.api.serializers import MemberEnrolSerializer

    serializer = MemberEnrolSerializer(data={"email": "anna@example.nl"})
    assert serializer.is_valid(), serializer.errors
    root = serializer.fields["email"].root
    assert root is not serializer
    assert not hasattr(root, "initial_data")
