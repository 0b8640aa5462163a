from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.accounts import Account
from accounts.errors import Invalid
from content.sensitive import (
    MAX_STORED_MATCHES,
    Automaton,
    Match,
    Review,
    ReviewPolicy,
    add_words,
    fold,
    list_words,
    remove_words,
)
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW


def brute_force(words: list[str], text: str) -> list[tuple[str, int, int]]:
    """Every (word, start, end) by trying each word at each position: slow and obviously right."""
    first: dict[str, str] = {}
    for word in words:
        if word:
            first.setdefault(fold(word), word)
    folded = fold(text)
    return sorted(
        (word, i, i + len(key))
        for key, word in first.items()
        for i in range(len(text))
        if folded.startswith(key, i)
    )


def spans(matches: list[Match]) -> list[tuple[str, int, int]]:
    return sorted((m.word, m.start, m.end) for m in matches)


# A small alphabet mixing cases, Chinese and full-width letters makes overlaps and repeats
# common, which is where an automaton's failure links go wrong.
ALPHABET = "abAB他她它ａＢ"


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.text(ALPHABET, min_size=0, max_size=4), max_size=8),
    text=st.text(ALPHABET, max_size=60),
)
def test_the_automaton_finds_what_brute_force_finds(words: list[str], text: str) -> None:
    assert spans(Automaton(words).find(text)) == brute_force(words, text)


def test_overlapping_words_are_all_found() -> None:
    found = Automaton(["he", "she", "his", "hers"]).find("ushers")
    assert [(m.word, m.start, m.end) for m in found] == [
        ("she", 1, 4),
        ("he", 2, 4),
        ("hers", 2, 6),
    ]


def test_chinese_words_are_found_at_their_positions() -> None:
    text = "这家店提供网络赌博和赌场服务"
    found = Automaton(["赌博", "赌场", "网络赌博"]).find(text)
    assert [(m.word, text[m.start : m.end]) for m in found] == [
        ("网络赌博", "网络赌博"),
        ("赌博", "赌博"),
        ("赌场", "赌场"),
    ]


def test_latin_is_matched_in_any_case_and_width_and_reported_as_listed() -> None:
    text = "Visit our CASINO or Ｃａｓｉｎｏ tonight"
    found = Automaton(["Casino"]).find(text)
    assert [(m.word, text[m.start : m.end]) for m in found] == [
        ("Casino", "CASINO"),
        ("Casino", "Ｃａｓｉｎｏ"),
    ]


def test_letters_that_lower_to_two_characters_keep_positions() -> None:
    text = "İstanbul casino"
    (match,) = Automaton(["casino"]).find(text)
    assert text[match.start : match.end] == "casino"


def test_an_empty_automaton_finds_nothing() -> None:
    assert Automaton([]).find("anything") == []
    assert Automaton(["", ""]).size == 0


async def test_lists_are_global_or_per_account(store: SQLiteStore, account: Account) -> None:
    assert await add_words(store, account_id=None, words=["赌博", "Casino"], now=NOW) == 2
    assert await add_words(store, account_id=account.id, words=["竞品", "casino"], now=NOW) == 2
    assert await add_words(store, account_id=None, words=["CASINO", " 赌博 "], now=NOW) == 0
    assert await list_words(store, account_id=None) == ["Casino", "赌博"]  # as first added
    assert sorted(await list_words(store, account_id=account.id)) == ["casino", "竞品"]
    assert await remove_words(store, account_id=None, words=["CASINO", "missing"]) == 1
    assert await list_words(store, account_id=None) == ["赌博"]


@pytest.mark.parametrize(
    ("words", "field"),
    [(["ok", "  "], "words.1"), (["x" * 51], "words.0"), (["a\x00b"], "words.0"), ([3], "words.0")],
)
async def test_bad_words_name_the_field(store: SQLiteStore, words: list[str], field: str) -> None:
    with pytest.raises(Invalid) as err:
        await add_words(store, account_id=None, words=words, now=NOW)
    assert err.value.field == field
    assert await list_words(store, account_id=None) == []


async def test_a_review_reads_the_global_and_the_account_list_only(
    store: SQLiteStore, account: Account, other_account: Account
) -> None:
    await add_words(store, account_id=None, words=["赌博"], now=NOW)
    await add_words(store, account_id=account.id, words=["竞品"], now=NOW)
    policy = ReviewPolicy(store)
    text = "赌博 与 竞品"
    mine = await policy.review_text(text, account_id=account.id)
    theirs = await policy.review_text(text, account_id=other_account.id)
    assert mine.flagged and [m.word for m in mine.matches] == ["赌博", "竞品"]
    assert theirs.flagged and [m.word for m in theirs.matches] == ["赌博"]
    clean = await policy.review_text("绿茶", account_id=account.id)
    assert not clean.flagged and clean.matches == ()


async def test_the_automaton_is_rebuilt_only_when_a_list_changes(
    store: SQLiteStore, account: Account
) -> None:
    policy = ReviewPolicy(store)
    await add_words(store, account_id=account.id, words=["竞品"], now=NOW)
    for _ in range(3):
        assert (await policy.review_text("竞品", account_id=account.id)).flagged
    assert policy.builds == 1
    # A change made elsewhere (another policy, another process) bumps the stamp in the store.
    await add_words(store, account_id=None, words=["赌博"], now=NOW)
    assert (await policy.review_text("赌博", account_id=account.id)).flagged
    assert policy.builds == 2
    await remove_words(store, account_id=account.id, words=["竞品"])
    assert not (await policy.review_text("竞品", account_id=account.id)).flagged
    assert policy.builds == 3
    await add_words(store, account_id=None, words=["赌博"], now=NOW)  # nothing new: same stamp
    await policy.review_text("x", account_id=account.id)
    assert policy.builds == 3


async def test_review_fields_names_the_field_of_each_match(
    store: SQLiteStore, policy: ReviewPolicy
) -> None:
    review = await policy.review_fields(
        {"title": "今晚 Casino", "blocks.0.text": "无", "caption": "赌博"}, account_id=None
    )
    assert [(m.field, m.word, m.start, m.end) for m in review.matches] == [
        ("title", "casino", 3, 9),
        ("caption", "赌博", 0, 2),
    ]


async def test_a_word_on_both_lists_matches_once(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    await add_words(store, account_id=account.id, words=["CASINO"], now=NOW)
    review = await policy.review_text("casino", account_id=account.id)
    assert [(m.word, m.start, m.end) for m in review.matches] == [("casino", 0, 6)]


async def test_a_stored_review_keeps_only_the_first_matches(
    store: SQLiteStore, policy: ReviewPolicy
) -> None:
    review = await policy.review_text("赌博" * 60, account_id=None)
    # Matching stops one past what is stored: enough to say "more than 50" for the reviewer.
    assert len(review.matches) == 51
    doc = review.to_doc()
    assert doc["match_count"] == 51 and len(doc["matches"]) == 50
    assert Review.from_doc(doc).flagged


def test_a_hostile_text_stops_at_the_match_limit() -> None:
    automaton = Automaton(["a" * n for n in range(1, 51)])
    assert len(automaton.find("a" * 200_000, limit=MAX_STORED_MATCHES + 1)) == 51
    assert len(automaton.find("a" * 60)) > 51  # unbounded when asked for every match
