from __future__ import annotations

import pytest

from accounts import accounts
from accounts.accounts import Account, update_profile
from accounts.errors import Invalid
from accounts.fans import upsert_fan
from accounts.passwords import Passwords
from accounts.signup import sign_up
from store.sqlite import SQLiteStore
from tests.accounts.conftest import NOW


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "x" * 61}, "name"),
        ({"name": "\u200b \u200b"}, "name"),
        ({"bio": "b" * 501}, "bio"),
        ({"embed_origins": [f"https://s{i}.example" for i in range(21)]}, "embed_origins"),
        ({"embed_origins": ["https://ok.example", "ftp://x.example"]}, "embed_origins.1"),
        ({"keywords": ["ok", "k" * 21]}, "keywords.1"),
        ({"keywords": ["  "]}, "keywords.0"),
        ({"keywords": [str(i) for i in range(21)]}, "keywords"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
    ],
)
async def test_profile_limits_hold_in_the_domain(
    store: SQLiteStore, account: Account, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(Invalid) as err:
        await update_profile(store, account.id, now=NOW, **changes)  # type: ignore[arg-type]
    assert err.value.field == field
    assert await accounts.get_account(store, account.id) == account  # nothing written


async def test_origins_are_normalised_and_deduplicated(
    store: SQLiteStore, account: Account
) -> None:
    done = await update_profile(
        store,
        account.id,
        now=NOW,
        embed_origins=["HTTPS://Shop.Example:443", "https://shop.example/", "http://a.example:81"],
    )
    assert done.embed_origins == ("https://shop.example", "http://a.example:81")


async def test_blank_fan_identities_are_refused(store: SQLiteStore, account: Account) -> None:
    for external_id, name, field in [("  ", "Lily", "external_id"), ("u1", " \u200b ", "name")]:
        with pytest.raises(Invalid) as err:
            await upsert_fan(
                store, issuer_id=account.id, external_id=external_id, name=name, now=NOW
            )
        assert err.value.field == field


async def test_sign_up_refuses_overlong_names_and_passwords_before_hashing(
    store: SQLiteStore, passwords: Passwords
) -> None:
    for name, password, field in [
        ("n" * 61, "password1", "account.name"),
        ("Tea", "p" * 257, "password"),
    ]:
        with pytest.raises(Invalid) as err:
            await sign_up(
                store,
                passwords,
                email="a@b.example",
                password=password,
                account_name=name,
                handle="tea",
                now=NOW,
            )
        assert err.value.field == field
