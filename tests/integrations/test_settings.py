"""The sync settings: parsed strictly, documented, and the retired one still accepted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integrations.worker import SyncSettings
from nguon.config import SETTINGS, ConfigError, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("NGUON_PORTAL_RATE_LIMIT", "0", "between 0.01 and 100000"),
        ("NGUON_PORTAL_RATE_LIMIT", "fast", "must be a number of requests per second"),
        ("NGUON_PORTAL_RATE_LIMIT", "nan", "between"),
        ("NGUON_SYNC_RETRY_FOR", "-1", "between"),
        ("NGUON_SYNC_RETRY_FOR", "inf", "between"),
        ("NGUON_SYNC_RETRY_FOR", "1 day", "must be a number of seconds"),
        ("NGUON_SYNC_BACKOFF_BASE", "0", "between"),
        ("NGUON_SYNC_BACKOFF_MAX", "1e9", "between"),
        ("NGUON_SYNC_CIRCUIT_FAILURES", "0", "at least 1"),
        ("NGUON_SYNC_CIRCUIT_FAILURES", "2.5", "whole number"),
        ("NGUON_SYNC_PROBE_SECONDS", "3601", "between"),
        ("NGUON_SYNC_MAX_ATTEMPTS", "many", "whole number"),
    ],
)
def test_a_bad_sync_setting_stops_start_up_naming_it(name: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}: .*{re.escape(rule)}"):
        load_settings({name: value})


def test_the_settings_reach_the_worker_and_the_retired_one_is_still_accepted() -> None:
    config = load_settings(
        {
            "NGUON_PORTAL_RATE_LIMIT": "12.5",
            "NGUON_SYNC_RETRY_FOR": "3600",
            "NGUON_SYNC_BACKOFF_BASE": "0.5",
            "NGUON_SYNC_BACKOFF_MAX": "120",
            "NGUON_SYNC_CIRCUIT_FAILURES": "3",
            "NGUON_SYNC_PROBE_SECONDS": "10",
            "NGUON_SYNC_MAX_ATTEMPTS": "8",  # an old deployment's value: start-up goes on
        }
    )
    assert config["PORTAL_RATE_LIMIT"] == 12.5
    settings = SyncSettings.from_config(config)
    assert (settings.retry_for, settings.backoff_base, settings.backoff_max) == (3600, 0.5, 120)
    assert (settings.circuit_failures, settings.probe_every) == (3, 10)
    defaults = SyncSettings.from_config(load_settings({}))
    assert defaults.retry_for == 86400 and defaults.circuit_failures == 5


def test_every_setting_is_in_the_readme_table() -> None:
    table = README.read_text()
    missing = [s.env for s in SETTINGS if f"`NGUON_{s.env}`" not in table]
    assert missing == []
