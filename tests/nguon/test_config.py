"""Configuration: strict parsing of NGUON_* variables and the instance defaults."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nguon.config import ConfigError, build_config, load_settings


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("NGUON_MAX_CONTENT_LENGTH", "lots", "must be a whole number"),
        ("NGUON_MAX_CONTENT_LENGTH", "10", "must be at least 1024"),
        ("NGUON_PUBLIC_URL", "nguon.example.vn", "absolute http:// or https:// URL"),
        ("NGUON_PUBLIC_URL", "https://nguon.example.vn/?x=1", "must not carry a query"),
        ("NGUON_DATABASE_URL", "mysql://root@localhost/nguon", "must start with sqlite:///"),
        ("NGUON_SECURE_COOKIES", "maybe", "must be one of 1/0"),
        ("NGUON_DEFAULT_LOCALE", "fr", "must be 'vi' or 'en'"),
        ("NGUON_LOGIN_MAX_ATTEMPTS", "0", "must be at least 1"),
        ("NGUON_SECRET_KEY", "short", "at least 32 characters"),
        ("NGUON_LOG_LEVEL", "loud", "must be DEBUG"),
        ("NGUON_EPCIS_PUSH_URL", "epcis.example.vn", "must be an absolute http(s) URL"),
    ],
)
def test_bad_value_names_the_variable_and_rule(name: str, value: str, rule: str) -> None:
    """A malformed value stops start-up with the variable's name and the rule it broke."""
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert str(caught.value).startswith(name + ":")
    assert rule in str(caught.value)


def test_unknown_nguon_variable_is_refused() -> None:
    """A misspelt variable is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="NGUON_PUBLICURL: unknown setting"):
        load_settings({"NGUON_PUBLICURL": "https://x.vn"})


@pytest.mark.parametrize("name", ["NGUON_TEST_DATABASE_URL", "NGUON_BENCH_DATABASE_URL"])
def test_variables_of_the_tests_and_benchmarks_are_not_refused(name: str) -> None:
    """The suite and bench/ read these; an app started beside them must not refuse them."""
    assert load_settings({name: "postgresql+psycopg://postgres@127.0.0.1/x"}) is not None


def test_good_values_are_parsed() -> None:
    values = load_settings(
        {
            "NGUON_DATABASE_URL": "postgresql://u@db/nguon",
            "NGUON_PUBLIC_URL": "https://nguon.bacgiang.gov.vn/",
            "NGUON_MAX_CONTENT_LENGTH": "2048",
            "NGUON_SECURE_COOKIES": "off",
            "NGUON_EPCIS_PUSH_URL": "https://epcis.example.vn/epcis/",
            "NGUON_EPCIS_PUSH_TOKEN": "secret",
        }
    )
    assert values["EPCIS_PUSH_URL"] == "https://epcis.example.vn/epcis"
    assert values["EPCIS_PUSH_TOKEN"] == "secret"
    assert values["DATABASE_URL"] == "postgresql+psycopg://u@db/nguon"
    assert values["PUBLIC_URL"] == "https://nguon.bacgiang.gov.vn"
    assert values["MAX_CONTENT_LENGTH"] == 2048
    assert values["SESSION_COOKIE_SECURE"] is False


def test_defaults_sqlite_in_instance_and_generated_secret(tmp_path: Path) -> None:
    """With nothing set: SQLite in the instance folder and a secret key made once, private."""
    config = build_config(tmp_path, environ={})
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'nguon.db'}"
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == config["SECRET_KEY"]
    assert len(config["SECRET_KEY"]) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert build_config(tmp_path, environ={})["SECRET_KEY"] == config["SECRET_KEY"]
    assert config["SESSION_COOKIE_SECURE"] is False


def test_https_public_url_turns_on_secure_cookies(tmp_path: Path) -> None:
    config = build_config(tmp_path, environ={"NGUON_PUBLIC_URL": "https://nguon.example.vn"})
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True


def test_cli_refuses_to_start_with_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """`nguon` with a bad variable exits 2 and says which variable is wrong."""
    from click.testing import CliRunner

    from nguon.cli import main

    monkeypatch.setenv("NGUON_MAX_CONTENT_LENGTH", "-5")
    result = CliRunner().invoke(main, ["users", "list"])
    assert result.exit_code == 2
    assert "NGUON_MAX_CONTENT_LENGTH" in result.output


def test_workers_starting_together_share_one_secret_key(tmp_path: Path) -> None:
    """Two gunicorn workers booting at once on a fresh instance both create the key: the
    one that comes second reads the first one's key (it crashed with FileExistsError)."""
    from concurrent.futures import ThreadPoolExecutor

    from nguon.config import secret_key_from_instance

    for attempt in range(20):
        instance = tmp_path / str(attempt)
        with ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(secret_key_from_instance, [instance] * 8))
        assert keys == {(instance / "secret_key").read_text().strip()}
        assert [p.name for p in instance.iterdir()] == ["secret_key"]  # no drafts left
