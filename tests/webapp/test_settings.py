from __future__ import annotations

import stat
from pathlib import Path

import pytest

from webapp.cli import main
from webapp.settings import Settings, SettingsError


def test_flags_win_over_variables_which_win_over_defaults(tmp_path: Path) -> None:
    env = {
        "LIFEACCOUNT_PORT": "9001",
        "LIFEACCOUNT_HOST": "0.0.0.0",
        "LIFEACCOUNT_COOKIE_SECURE": "true",
    }
    settings = Settings.load({"port": 7000, "host": None}, env)
    assert settings.port == 7000  # flag
    assert settings.host == "0.0.0.0"  # variable
    assert settings.cookie_secure is True
    assert settings.store == "sqlite:///lifeaccount.db"  # default


def test_a_bad_number_says_which_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LIFEACCOUNT_PORT"):
        Settings.load({}, {"LIFEACCOUNT_PORT": "eighty"})


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).with_secret()
    second = Settings(data_dir=tmp_path).with_secret()
    assert first.secret == second.secret and len(first.secret) == 64
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600
    given = "g" * 32
    assert Settings(data_dir=tmp_path, secret=given).with_secret().secret == given
    # The key file is written through a scratch file that is renamed: none is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


@pytest.mark.parametrize("secret", ["given", "s" * 31])
def test_a_short_secret_is_refused(tmp_path: Path, secret: str) -> None:
    with pytest.raises(SettingsError, match="LIFEACCOUNT_SECRET is shorter than 32"):
        Settings(data_dir=tmp_path, secret=secret).with_secret()


def test_a_short_key_file_is_refused_not_used(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("short\n")
    with pytest.raises(SettingsError, match="secret.key"):
        Settings(data_dir=tmp_path).with_secret()


def test_check_reports_each_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ffmpeg  ok" in out and "store   ok" in out and "broker  ok" in out
    assert main(["check", "--data-dir", str(tmp_path), "--store", "postgres://x"]) == 1
    assert "store   FAIL  unknown store URL scheme 'postgres'" in capsys.readouterr().out
