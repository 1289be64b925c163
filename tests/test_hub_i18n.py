"""The pages speak German and English (issue 16): chosen by the browser's language, switchable
and then kept; and the German catalogue holds every text the pages say (a text added to a
template without its German fails here, naming it)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub.web.i18n import LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent
METHODS = [
    ("hub/web/**.py", "python"),
    ("hub/services/**.py", "python"),  # the refusals pages say (hub.services.wording)
    ("hub/web/templates/**.html", "jinja2"),
]
OPTIONS = {"hub/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def test_every_text_of_the_pages_has_its_german():
    said = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(ROOT, METHODS, OPTIONS)
        if message[0].startswith(("hub/web", "hub/services"))
    }
    assert len(said) >= 9
    with (LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    missing = sorted(m for m in said if not ((found := catalog.get(m)) and found.string))
    fuzzy = sorted(str(m.id) for m in catalog if m.id and m.fuzzy)
    assert missing == [], f"no German for {missing}: run `make messages` and translate them"
    assert fuzzy == [], f"fuzzy (unchecked) German for {fuzzy}"


def test_the_browsers_language_chooses_and_a_choice_is_kept(api):
    german = api.get("/ui/sign-in", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert german.status_code == 200
    assert '<html lang="de">' in german.text and "Anmelden" in german.text
    assert german.headers["content-language"] == "de"
    french = api.get("/ui/sign-in", headers={"Accept-Language": "fr-FR"})  # not spoken
    assert '<html lang="en">' in french.text and ">Sign in<" in french.text

    chosen = api.get("/ui/sign-in?lang=en", headers={"Accept-Language": "de"})
    assert ">Sign in<" in chosen.text and "hafen_lang=en" in chosen.headers["set-cookie"]
    kept = api.get("/ui/sign-in", headers={"Accept-Language": "de"})  # the cookie wins
    assert ">Sign in<" in kept.text
    api.cookies.clear()
    odd = api.get("/ui/sign-in?lang=xx", headers={"Accept-Language": "de"})
    assert "Anmelden" in odd.text and "set-cookie" not in odd.headers


def test_a_wrong_password_is_told_in_the_visitors_language(api):
    refused = api.post(
        "/ui/sign-in",
        data={"username": "nadia", "password": "not the one at all"},
        headers={"Accept-Language": "de"},
    )
    assert refused.status_code == 401 and "Name oder Passwort falsch." in refused.text
