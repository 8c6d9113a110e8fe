"""gunicorn's settings for the web process: the Procfile's `web` line and `make bench` use them.

Environment: PORT (8000), WEB_CONCURRENCY (worker processes, default below), WEB_THREADS
(threads per worker), GUNICORN_ACCESS_LOG ("-": stdout; "" turns it off).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
wsgi_app = "loyalty_site.wsgi:application"
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))))
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
# Load the app (settings, models, every URLconf: loyalty_site/wsgi.py) once in the master and
# fork the workers from it: they share its memory and answer at once, instead of each spending
# seconds of CPU on imports (on a busy machine long enough for gunicorn to kill a booting
# worker). The master holds no database connection (wsgi.py closes them), so none is shared.
preload_app = True
# A till waits at most this long for an answer; a stuck worker is restarted.
timeout = 30
