from __future__ import annotations

from typing import Any

import pytest

from accounts.errors import Invalid
from content.links import ServiceLink, parse_service_link, parse_service_links

GOOD: dict[str, Any] = {
    "app_id": "wx_2021shop",
    "page": "pages/goods/detail",
    "query": {"sku": "A-1", "来源": "生活号"},
    "title": "立即购买",
    "image": "https://cdn.example.com/a.png",
}


def test_a_good_link_round_trips_through_its_document() -> None:
    link = parse_service_link(GOOD, field="service_links.0")
    assert link == ServiceLink(
        "wx_2021shop",
        "pages/goods/detail",
        "立即购买",
        {"sku": "A-1", "来源": "生活号"},
        "https://cdn.example.com/a.png",
    )
    assert ServiceLink.from_doc(link.to_doc()) == link


@pytest.mark.parametrize(
    "changes",
    [
        {"page": "/pages/index"},
        {"page": "pages/a.b/c-d_e~f"},
        {"query": None, "image": None},
        {"image": "upl_01jabcdefghjkmnpqrstvwxyz0"},
        {"image": "http://cdn.example.com/a.png"},
        {"app_id": "a" * 64, "title": "t" * 40, "page": "p" * 256},
        {"query": {"k": "v" * 1023}},
        {"title": "  多余   空格  "},
    ],
)
def test_links_that_are_accepted(changes: dict[str, Any]) -> None:
    body = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    link = parse_service_link(body, field="service_links.0")
    assert link.app_id == body["app_id"] and link.query == body.get("query", {})
    assert link.title == " ".join(body["title"].split())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"app_id": None}, "service_links.0.app_id"),
        ({"app_id": "wx-shop"}, "service_links.0.app_id"),
        ({"app_id": "a" * 65}, "service_links.0.app_id"),
        ({"app_id": 7}, "service_links.0.app_id"),
        ({"page": None}, "service_links.0.page"),
        ({"page": ""}, "service_links.0.page"),
        ({"page": "https://evil.example/x"}, "service_links.0.page"),
        ({"page": "javascript:alert(1)"}, "service_links.0.page"),
        ({"page": "//evil.example/x"}, "service_links.0.page"),
        ({"page": "pages/../../admin"}, "service_links.0.page"),
        ({"page": "pages/a?x=1"}, "service_links.0.page"),
        ({"page": "pages/a#top"}, "service_links.0.page"),
        ({"page": "pages\\a"}, "service_links.0.page"),
        ({"page": "pages/ a"}, "service_links.0.page"),
        ({"page": "p" * 257}, "service_links.0.page"),
        ({"query": ["a"]}, "service_links.0.query"),
        ({"query": {"a": {"nested": "x"}}}, "service_links.0.query.a"),
        ({"query": {"a": 1}}, "service_links.0.query.a"),
        ({"query": {"": "x"}}, "service_links.0.query"),
        ({"query": {"a": "line\nbreak"}}, "service_links.0.query.a"),
        ({"query": {"k": "v" * 1024}}, "service_links.0.query"),
        ({"query": {"k": "值" * 342}}, "service_links.0.query"),  # 1,027 bytes in UTF-8
        ({"title": None}, "service_links.0.title"),
        ({"title": "   "}, "service_links.0.title"),
        ({"title": "t" * 41}, "service_links.0.title"),
        ({"image": "ftp://cdn.example.com/a.png"}, "service_links.0.image"),
        ({"image": "https://"}, "service_links.0.image"),
        ({"image": "not an id"}, "service_links.0.image"),
        ({"image": 5}, "service_links.0.image"),
        ({"color": "red"}, "service_links.0.color"),
    ],
)
def test_links_that_are_refused_name_the_field(changes: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(Invalid) as err:
        parse_service_link(body, field="service_links.0")
    assert err.value.field == field


def test_a_list_holds_at_most_five_and_names_each_item() -> None:
    assert len(parse_service_links([GOOD] * 5)) == 5
    assert parse_service_links(None) == []
    with pytest.raises(Invalid) as err:
        parse_service_links([GOOD] * 6)
    assert err.value.field == "service_links"
    with pytest.raises(Invalid) as err:
        parse_service_links([GOOD, {**GOOD, "page": "../x"}])
    assert err.value.field == "service_links.1.page"
    with pytest.raises(Invalid) as err:
        parse_service_links([GOOD, "wx_shop"])
    assert err.value.field == "service_links.1"
    with pytest.raises(Invalid) as err:
        parse_service_links({"0": GOOD})
    assert err.value.field == "service_links"
