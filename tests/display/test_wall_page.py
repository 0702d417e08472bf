"""`/display/{L}` as the server renders it: the office, its services and counters, the texts in
the page's language, the spoken call's template per language (the location's own words where
it has them); the token never in the HTML; an
unknown location gets a friendly 404 page; bad options a 400 naming the field."""

from __future__ import annotations

import json
import re

import pytest

from aufruf.display.wall import spoken_languages
from tests.builders import a_location


@pytest.fixture
async def location(db):
    await a_location(db, services={"pass": 10, "other": 10}, counters=2)


def page_config(html: str) -> dict:
    found = re.search(r'<script id="display-data" type="application/json">(.*?)</script>', html)
    assert found, "the page carries its configuration for display.js"
    return json.loads(found[1])


async def test_the_display_names_the_office_its_services_and_counters(client, location):
    page = await client.get("/display/amt?layout=counters")

    assert page.status_code == 200
    html = page.text
    assert '<html lang="de" dir="ltr">' in html
    assert '<h1 class="wall-office">Standort amt</h1>' in html
    assert 'data-service="pass"><span class="waiting-name">Pass</span>' in html
    assert html.count('class="counter-column"') == 2
    assert 'data-counter="Platz 2"' in html
    config = page_config(html)
    assert config["location"] == "amt"
    assert config["layout"] == "counters"
    assert config["timezone"] == "Europe/Berlin"
    german = "Nummer %(number)s, bitte zu %(counter)s"
    assert config["speak"] == [{"lang": "de", "template": german}]
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_the_call_is_spoken_in_the_languages_asked_for(client, location):
    page = await client.get("/display/amt?speak=de,ar,xx,de&lang=en")

    config = page_config(page.text)
    assert [s["lang"] for s in config["speak"]] == ["de", "ar"]
    assert config["speak"][1]["template"] == "الرقم %(number)s، يرجى التوجه إلى %(counter)s"
    assert '<h2 id="call-heading" class="wall-label">Now calling</h2>' in page.text


async def test_a_location_speaks_its_own_words_where_it_has_them(db, client):
    own = "Die Nummer %(number)s wird an %(counter)s erwartet"
    await a_location(db, counters=1, queue={"call_text": {"de": own}})

    config = page_config((await client.get("/display/amt?speak=de,en")).text)

    assert config["speak"] == [
        {"lang": "de", "template": own},
        {"lang": "en", "template": "Number %(number)s, please go to %(counter)s"},
    ]


def test_spoken_languages_default_to_the_page_language():
    assert spoken_languages(None, "tr") == ["tr"]
    assert spoken_languages(" EN , uk", "de") == ["en", "uk"]
    assert spoken_languages("fr", "de") == ["de"]


async def test_the_token_stays_out_of_the_page(client, location):
    secret = "dsp_" + "x" * 40
    page = await client.get(f"/display/amt?token={secret}&layout=calls")

    assert page.status_code == 200
    assert secret not in page.text
    assert "token" not in "".join(re.findall(r'href="([^"]*)"', page.text))
    assert 'href="/display/amt?layout=calls&amp;lang=en"' in page.text


async def test_an_unknown_location_gets_a_friendly_page(client, location):
    page = await client.get("/display/nowhere", headers={"Accept-Language": "tr"})

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="tr" dir="ltr">' in page.text
    assert "<h1>Birim bulunamadı</h1>" in page.text


async def test_an_unknown_layout_is_refused_naming_the_field(client, location):
    page = await client.get("/display/amt?layout=huge")

    assert page.status_code == 400
    assert "layout" in page.text


async def test_the_scripts_and_styles_are_served(client, location):
    script = await client.get("/static/display.js")
    style = await client.get("/static/display.css")

    assert script.status_code == style.status_code == 200
    assert "aufrufDisplay" in script.text
    assert "@media (orientation: portrait)" in style.text
