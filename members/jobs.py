"""Long jobs in short, resumable chunks (DESIGN.md §5), the one fan-out every app's jobs use.

A scheduled job is a coordinator and a chunk task. The coordinator takes one "as of" moment,
asks a selector for the ids of what is due then, and sends one chunk task per
LOYALTY_JOB_CHUNK_SIZE ids with that moment; each chunk calls its service with ``ids=`` (or
``account_ids=``/``member_ids=``) and the same moment, so the night is one consistent cut
whatever order the chunks run in. A worker lost mid-chunk costs that chunk: the broker delivers
it again after CELERY_VISIBILITY_TIMEOUT (acks_late), and the other chunks ran meanwhile. A
chunk never run at all (its message lost) leaves exactly its own rows due, and the next run's
selector finds them. So a chunk must be safe to run twice or at the same time as another run:
the services claim their rows (a conditional UPDATE, a row lock, a unique key) and skip what is
already done.

It lives in members, the lowest app, so that the tasks of every app may import it.
"""

from collections.abc import Iterable
from datetime import date, datetime
from itertools import islice

from django.conf import settings


def chunks_send(chunk_task, ids: Iterable[int], *, at: datetime | date | None = None) -> int:
    """Send ``chunk_task.delay(chunk_ids, at_iso)`` once per LOYALTY_JOB_CHUNK_SIZE ids (in the
    order given); returns how many chunks were sent (0 when nothing is due). `ids` may be a
    generator: it is read one chunk at a time."""
    size = settings.LOYALTY_JOB_CHUNK_SIZE
    moment = at.isoformat() if at is not None else None
    ids = iter(ids)
    sent = 0
    while chunk := list(islice(ids, size)):
        chunk_task.delay(chunk, moment)
        sent += 1
    return sent


def moment_parse(value: str) -> datetime:
    """The "as of" moment a chunk was sent with (an aware datetime in ISO format)."""
    return datetime.fromisoformat(value)
