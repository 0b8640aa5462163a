from __future__ import annotations

from datetime import timedelta

import pytest

from accounts import apikeys, staff
from accounts.errors import Conflict, Invalid, NotFound, Unauthorized
from accounts.passwords import Passwords
from accounts.signup import sign_up
from store.sqlite import SQLiteStore
from tests.accounts.conftest import NOW


async def _signup(store: SQLiteStore, passwords: Passwords, handle: str = "tea") -> object:
    return await sign_up(
        store,
        passwords,
        email=f"Boss@{handle}.example",
        password="password1",
        account_name="Tea",
        handle=handle,
        now=NOW,
    )


async def test_sign_up_makes_an_owner_an_account_and_a_working_key(
    store: SQLiteStore, passwords: Passwords
) -> None:
    done = await sign_up(
        store,
        passwords,
        email="Boss@Tea.example",
        password="password1",
        account_name="  Tea   House ",
        handle="Tea-House",
        now=NOW,
    )
    assert done.account.handle == "tea-house" and done.account.name == "Tea House"
    assert done.staff.email == "boss@tea.example"
    assert await staff.role_of(store, done.account.id, done.staff.id) is staff.Role.OWNER
    assert done.api_key.secret is not None
    key = await apikeys.authenticate_key(store, done.api_key.secret)
    assert key.account_id == done.account.id
    doc = await store.collection(staff.STAFF).get(done.staff.id)
    assert doc is not None and doc["password_hash"].startswith("$argon2id$")
    assert "password1" not in str(doc)


async def test_sign_up_is_all_or_nothing(store: SQLiteStore, passwords: Passwords) -> None:
    await _signup(store, passwords, "tea")
    with pytest.raises(Conflict) as err:
        await sign_up(
            store,
            passwords,
            email="new@x.example",
            password="password1",
            account_name="Tea",
            handle="tea",
            now=NOW,
        )
    assert err.value.code == "handle_taken"
    # The login made before the handle clash was rolled back with it.
    assert await store.collection(staff.STAFF).find_one({"email": "new@x.example"}) is None
    with pytest.raises(Conflict) as err:
        await _signup(store, passwords, "tea")
    assert err.value.code == "email_taken"


@pytest.mark.parametrize(
    ("email", "password", "handle", "field"),
    [
        ("not-an-email", "password1", "tea", "email"),
        ("a@b.example", "short", "tea", "password"),
        ("a@b.example", "password1", "x", "account.handle"),
        ("a@b.example", "password1", "api", "account.handle"),
        ("a@b.example", "password1", "has space", "account.handle"),
    ],
)
async def test_sign_up_rules_name_the_field(
    store: SQLiteStore, passwords: Passwords, email: str, password: str, handle: str, field: str
) -> None:
    with pytest.raises(Invalid) as err:
        await sign_up(
            store,
            passwords,
            email=email,
            password=password,
            account_name="T",
            handle=handle,
            now=NOW,
        )
    assert err.value.field == field


async def test_login_and_sessions(store: SQLiteStore, passwords: Passwords) -> None:
    await _signup(store, passwords)
    with pytest.raises(Unauthorized):
        await staff.authenticate(store, passwords, email="boss@tea.example", password="wrong-pw")
    with pytest.raises(Unauthorized):
        await staff.authenticate(store, passwords, email="nobody@tea.example", password="x")
    who = await staff.authenticate(
        store, passwords, email=" BOSS@tea.example", password="password1"
    )
    session = await staff.open_session(store, who, now=NOW)
    assert (await staff.session_for(store, session.token, now=NOW)) is not None
    later = NOW + staff.SESSION_TTL + timedelta(seconds=1)
    assert await staff.session_for(store, session.token, now=later) is None
    await staff.close_session(store, session.token)
    assert await staff.session_for(store, session.token, now=NOW) is None
    # Only a digest of the session token is stored.
    assert await store.collection(staff.SESSIONS).find_one({"id": session.token}) is None


async def test_invitations_for_new_and_existing_logins(
    store: SQLiteStore, passwords: Passwords
) -> None:
    tea = await sign_up(
        store,
        passwords,
        email="boss@tea.example",
        password="password1",
        account_name="Tea",
        handle="tea",
        now=NOW,
    )
    cafe = await sign_up(
        store,
        passwords,
        email="boss@cafe.example",
        password="password2",
        account_name="Cafe",
        handle="cafe",
        now=NOW,
    )
    new = await staff.invite(
        store, account_id=tea.account.id, email="ed@tea.example", role=staff.Role.EDITOR, now=NOW
    )
    assert new.token is not None
    who, member = await staff.accept_invitation(
        store, passwords, token=new.token, password="editorpass", now=NOW
    )
    assert who.email == "ed@tea.example" and member.role is staff.Role.EDITOR
    with pytest.raises(NotFound):  # used once
        await staff.accept_invitation(
            store, passwords, token=new.token, password="editorpass", now=NOW
        )
    # An existing login proves itself with its own password and gains a second account.
    cross = await staff.invite(
        store, account_id=cafe.account.id, email="boss@tea.example", role=staff.Role.HOST, now=NOW
    )
    assert cross.token is not None
    with pytest.raises(Unauthorized):
        await staff.accept_invitation(
            store, passwords, token=cross.token, password="guessing", now=NOW
        )
    who, member = await staff.accept_invitation(
        store, passwords, token=cross.token, password="password1", now=NOW
    )
    assert who.id == tea.staff.id
    assert {m.account_id for m in await staff.memberships(store, who.id)} == {
        tea.account.id,
        cafe.account.id,
    }


async def test_an_expired_invitation_cannot_be_used(
    store: SQLiteStore, passwords: Passwords
) -> None:
    tea = await sign_up(
        store,
        passwords,
        email="boss@tea.example",
        password="password1",
        account_name="Tea",
        handle="tea",
        now=NOW,
    )
    inv = await staff.invite(
        store,
        account_id=tea.account.id,
        email="late@tea.example",
        role=staff.Role.MODERATOR,
        now=NOW,
    )
    assert inv.token is not None
    with pytest.raises(NotFound):
        await staff.accept_invitation(
            store, passwords, token=inv.token, password="password9", now=NOW + staff.INVITATION_TTL
        )
    assert await store.collection(staff.STAFF).find_one({"email": "late@tea.example"}) is None


async def test_api_keys_are_hashed_listed_and_revocable(
    store: SQLiteStore, passwords: Passwords
) -> None:
    tea = await sign_up(
        store,
        passwords,
        email="boss@tea.example",
        password="password1",
        account_name="Tea",
        handle="tea",
        now=NOW,
    )
    key = await apikeys.create_key(store, account_id=tea.account.id, name="orders", now=NOW)
    assert key.secret is not None
    stored = await store.collection(apikeys.API_KEYS).get(key.id)
    assert stored is not None and key.secret.split("_", 2)[2] not in str(stored)
    assert [k.secret for k in await apikeys.list_keys(store, tea.account.id)] == [None, None]
    await apikeys.revoke_key(store, account_id=tea.account.id, key_id=key.id, now=NOW)
    with pytest.raises(Unauthorized) as err:
        await apikeys.authenticate_key(store, key.secret)
    assert err.value.code == "api_key_revoked"
    wrong = key.secret[:-3] + "abc"
    with pytest.raises(Unauthorized) as err:
        await apikeys.authenticate_key(store, wrong)
    assert err.value.code == "api_key_invalid"
