"""Reports are tested against issued codes: reuse the traceability fixtures."""

import pytest

from tests.traceability.conftest import coop_headers, trace  # noqa: F401
from tests.traceability.test_resolver import item  # noqa: F401


@pytest.fixture
def fine_bands(in_tx):  # type: ignore[no-untyped-def]
    """The reviewed extract of Decree 99/2013's fine bands, loaded as the CLI loads it."""
    from registry.enforcement import fines

    return in_tx(fines.load_extract)
