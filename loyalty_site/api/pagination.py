from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.pagination import CursorPagination


class LedgerCursorPagination(CursorPagination):
    # The id grows with time and is unique, so the cursor is exact even for same-second entries.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        # Refused, not silently replaced by the default or the maximum: a channel that asks for
        # 500 or "all" learns it at once, and the schema's range is the one the server keeps.
        values = request.query_params.getlist(self.page_size_query_param)
        if not values:
            return self.page_size
        size = int(values[0]) if len(values) == 1 and _whole(values[0]) else 0
        if not 1 <= size <= self.max_page_size:
            raise serializers.ValidationError(
                {
                    self.page_size_query_param: [
                        _("A whole number from 1 to %(max)d, given once.")
                        % {"max": self.max_page_size}
                    ]
                }
            )
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


def _whole(value: str) -> bool:
    return value.isascii() and value.isdecimal() and len(value) <= 6
