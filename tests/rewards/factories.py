import factory

from members.models import Tier
from rewards.models import Reward, VoucherCode


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n + 1)
    threshold = factory.Sequence(lambda n: 1000 * n)


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward
        skip_postgeneration_save = True

    kind = Reward.Kind.DONATION
    name_en = factory.Sequence(lambda n: f"Reward {n}")
    name_nl = factory.LazyAttribute(lambda o: f"Beloning {o.name_en.split()[-1]}")
    points = 100


class VoucherRewardFactory(RewardFactory):
    kind = Reward.Kind.VOUCHER


class ProductRewardFactory(RewardFactory):
    kind = Reward.Kind.PRODUCT


class VoucherCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VoucherCode

    reward = factory.SubFactory(VoucherRewardFactory)
    code = factory.Sequence(lambda n: f"TEST-{n:04d}-CODE")
