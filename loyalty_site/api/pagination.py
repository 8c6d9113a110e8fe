from rest_framework.pagination import CursorPagination


class LedgerCursorPagination(CursorPagination):
    # The id grows with time and is unique, so the cursor is exact even for same-second entries.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
