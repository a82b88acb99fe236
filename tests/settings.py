"""The test suite's settings: reflib's own, read from the environment as in production, with
one change. The default password hasher makes every password the tests set cost about a third
of a second (over a second on a loaded machine), and each test's cast has three. The daphne,
Celery and manage.py processes that tests start inherit ``DJANGO_SETTINGS_MODULE``, so they
check those passwords with the same hasher."""

from reflib.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test databases are thrown away, so commits need not wait for the disk: every connection
# (the tests', the consumers' threads', the servers' the tests start) skips the fsync. Locks,
# isolation and visibility are unchanged.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA synchronous = OFF"  # noqa: F405
else:
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"  # noqa: F405

# A test's own event loop also runs the test's code, and a loaded machine can stall it for a
# moment: only the back-pressure tests, which set their own limit, may see messages refused busy.
REFLIB_OVERLOAD_LAG_MS = 10_000
