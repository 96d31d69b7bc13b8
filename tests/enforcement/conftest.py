"""Reports are tested against issued codes: reuse the traceability fixtures."""

from tests.traceability.conftest import coop_headers, trace  # noqa: F401
from tests.traceability.test_resolver import item  # noqa: F401
