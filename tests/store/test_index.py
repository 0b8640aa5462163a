from __future__ import annotations

from store.port import Index


def test_index_names_cannot_collide_across_field_splits() -> None:
    names = {
        Index("a", ("b", "c")).name,
        Index("a", ("b_c",)).name,
        Index("a_b", ("c",)).name,
        Index("a", ("b_c",), unique=True).name,
        Index("a", ("b.c",)).name,
    }
    assert len(names) == 5
    assert Index("a", ("b", "c")).name == Index("a", ("b", "c")).name
