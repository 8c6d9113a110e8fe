from django.contrib import admin

from members.models import Card, Member


class CardInline(admin.TabularInline):
    model = Card
    extra = 0
    readonly_fields = ("number", "issued_at")


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "status", "enrolled_at")
    list_filter = ("status",)
    search_fields = ("email", "last_name", "external_id", "cards__number")
    show_full_result_count = False
    inlines = [CardInline]


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ("number", "member", "status", "issued_at")
    list_select_related = ("member",)
    raw_id_fields = ("member",)
    search_fields = ("number",)
    show_full_result_count = False
