"""The pages a German public site must have (/imprint, /privacy, /accessibility with a
feedback contact): German and English defaults, texts a city sets in its own file."""

from __future__ import annotations

import pytest

from aufruf.settings import Settings, SettingsError
from tests.conftest import SECRET


@pytest.mark.parametrize(
    ("path", "german", "english"),
    [
        ("/imprint", "<h1>Impressum</h1>", "<h1>Imprint</h1>"),
        ("/privacy", "<h1>Datenschutzerklärung</h1>", "<h1>Privacy notice</h1>"),
        (
            "/accessibility",
            "<h1>Erklärung zur Barrierefreiheit</h1>",
            "<h1>Accessibility statement</h1>",
        ),
    ],
)
async def test_the_legal_pages_exist_in_german_and_english(client, path, german, english):
    de = await client.get(path)
    en = await client.get(path, headers={"Accept-Language": "en"})

    assert de.status_code == 200 and german in de.text
    assert en.status_code == 200 and english in en.text
    assert '<div class="legal-text">' in de.text


async def test_the_accessibility_statement_names_a_contact_for_feedback(client):
    page = (await client.get("/accessibility")).text

    assert "Kontakt für Rückmeldungen zur Barrierefreiheit" in page
    assert 'href="mailto:barrierefreiheit@example.org"' in page
    assert "<h2>Feedback und Kontakt</h2>" in page


async def test_other_languages_read_the_english_text_marked_as_english(client):
    page = (await client.get("/privacy?lang=ar")).text

    assert '<html lang="ar" dir="rtl">' in page
    assert "<h1>بيان الخصوصية</h1>" in page
    assert '<div class="legal-text" lang="en" dir="ltr">' in page
    assert "We use your details only" in page


async def test_a_city_sets_its_own_texts(db, clock, tmp_path):
    import httpx

    from aufruf.app import create_app
    from tests.conftest import running

    texts = tmp_path / "site.toml"
    texts.write_text(
        '[imprint]\nde = """\nStadt Hagen\nRathausstraße 11\n\n## Vertreten durch\n'
        'Den Oberbürgermeister\n"""\n\n[accessibility]\ncontact = "inklusion@hagen.de"\n',
        encoding="utf-8",
    )
    settings = Settings.from_env(
        {
            "AUFRUF_DATABASE_URL": db.url,
            "AUFRUF_SECRET_KEY": SECRET,
            "AUFRUF_SITE_TEXTS": str(texts),
        }
    )
    app = create_app(settings, db=db, clock=clock)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            imprint = (await client.get("/imprint")).text
            english = (await client.get("/imprint?lang=en")).text
            accessibility = (await client.get("/accessibility")).text

    assert '<p class="legal">Stadt Hagen\nRathausstraße 11</p>' in imprint
    assert "<h2>Vertreten durch</h2>" in imprint
    assert "This appointment booking is run by" in english  # not set: the default
    assert 'href="mailto:inklusion@hagen.de"' in accessibility


def test_an_unusable_texts_file_is_refused_at_start(tmp_path):
    bad = tmp_path / "site.toml"
    bad.write_text("[impressum]\nde = 'x'\n", encoding="utf-8")

    with pytest.raises(SettingsError, match=r"AUFRUF_SITE_TEXTS: .*unknown section \[impressum\]"):
        Settings.from_env({"AUFRUF_SECRET_KEY": SECRET, "AUFRUF_SITE_TEXTS": str(bad)})
    with pytest.raises(SettingsError, match="AUFRUF_SITE_TEXTS"):
        Settings.from_env({"AUFRUF_SECRET_KEY": SECRET, "AUFRUF_SITE_TEXTS": str(tmp_path / "x")})
