"""Every collection index the accounts domain needs, created at start-up."""

from __future__ import annotations

from accounts import accounts, apikeys, fans, follows, ledger, staff, tiers
from store.port import Index

INDEXES: list[Index] = [
    *accounts.INDEXES,
    *staff.INDEXES,
    *apikeys.INDEXES,
    *fans.INDEXES,
    *tiers.INDEXES,
    *follows.INDEXES,
    *ledger.INDEXES,
]
