"""Routes for points: wallet and budget credits, balances and the ledger (DESIGN §6, §8)."""

from __future__ import annotations

from accounts import fans, ledger
from accounts.accounts import get_account
from webapp import schemas as s
from webapp.api import ACCOUNT_PATH as A
from webapp.api import (
    ANY_ROLE,
    FAN,
    OWNER,
    STAFF_OR_KEY,
    Call,
    Endpoint,
)
from webapp.auth import Kind


async def credit_wallet(call: Call) -> s.BalanceOut:
    body: s.WalletCreditIn = call.body
    assert call.idempotency_key is not None  # the route requires one
    move = await ledger.credit_wallet(
        call.services.store,
        account_id=call.params["account_id"],
        fan_id=call.params["fan_id"],
        points=body.points,
        reason=body.reason,
        reference=body.reference,
        idempotency_key=call.idempotency_key,
        now=call.now,
    )
    return s.BalanceOut(balance=move.balance, entry_id=move.entry.id)


async def read_wallet(call: Call) -> s.WalletOut:
    store, account_id, fan_id = (
        call.services.store,
        call.params["account_id"],
        call.params["fan_id"],
    )
    await get_account(store, account_id)
    await fans.get_own_fan(store, account_id, fan_id)
    points = await ledger.balance(store, account_id, ledger.wallet(fan_id))
    return s.WalletOut(account_id=account_id, fan_id=fan_id, balance=points)


async def credit_budget(call: Call) -> s.BudgetOut:
    body: s.BudgetCreditIn = call.body
    assert call.idempotency_key is not None  # the route requires one
    move = await ledger.credit_budget(
        call.services.store,
        account_id=call.params["account_id"],
        points=body.points,
        reason=body.reason,
        reference=body.reference,
        idempotency_key=call.idempotency_key,
        now=call.now,
    )
    return s.BudgetOut(budget=move.balance, entry_id=move.entry.id)


def _entry_out(e: ledger.Entry) -> s.EntryOut:
    return s.EntryOut(
        id=e.id,
        debit=e.debit,
        credit=e.credit,
        points=e.points,
        reason=e.reason,
        reference=e.reference,
        at=e.at,
    )


async def list_ledger(call: Call) -> s.EntryPage:
    q: s.LedgerQuery = call.query
    account_id = call.params["account_id"]
    await get_account(call.services.store, account_id)
    items, cursor = await ledger.entries_page(
        call.services.store, account_id, book=q.book, limit=q.limit, cursor=q.cursor
    )
    return s.EntryPage(items=[_entry_out(e) for e in items], next_cursor=cursor)


async def my_wallets(call: Call) -> s.MyWallets:
    wallets = await ledger.fan_wallets(call.services.store, call.caller.id)
    return s.MyWallets(items=[s.MyWalletOut(account_id=a, balance=b) for a, b in wallets])


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{A}/wallets/{{fan_id}}/credits",
        credit_wallet,
        "Grant points to a fan's wallet",
        "points",
        response=s.BalanceOut,
        body=s.WalletCreditIn,
        status=201,
        allow=frozenset({Kind.API_KEY}),
        idempotency="required",
        errors=(403, 404, 409, 422, 428),
    ),
    Endpoint(
        "GET",
        f"{A}/wallets/{{fan_id}}",
        read_wallet,
        "A fan's balance",
        "points",
        response=s.WalletOut,
        allow=STAFF_OR_KEY,
        roles=ANY_ROLE,
        errors=(403, 404),
    ),
    Endpoint(
        "POST",
        f"{A}/budget/credits",
        credit_budget,
        "Add points to the account budget",
        "points",
        response=s.BudgetOut,
        body=s.BudgetCreditIn,
        status=201,
        allow=frozenset({Kind.API_KEY}),
        idempotency="required",
        errors=(403, 404, 409, 422, 428),
    ),
    Endpoint(
        "GET",
        f"{A}/ledger",
        list_ledger,
        "Ledger entries, newest first",
        "points",
        response=s.EntryPage,
        query=s.LedgerQuery,
        allow=STAFF_OR_KEY,
        roles=OWNER,
        errors=(403, 404, 422),
    ),
    Endpoint(
        "GET",
        "/api/v1/me/wallets",
        my_wallets,
        "The fan's wallets",
        "me",
        response=s.MyWallets,
        allow=FAN,
        errors=(401, 403),
    ),
]
