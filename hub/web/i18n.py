"""The pages' languages: German and English, through gettext catalogues kept with Babel.

Which language a page is in: the one the visitor chose (``?lang=``, then kept in a cookie),
else the best match of their browser's ``Accept-Language``, else English. The catalogues are
``locale/<lang>/LC_MESSAGES/messages.po``, read and compiled in memory once per process (no
compiled ``.mo`` files to forget to rebuild); ``make messages`` extracts new strings from the
templates and the web code into them, and a test fails while any German is missing.

Templates say ``{{ _("Book a desk") }}`` or ``{% trans %}...{% endtrans %}``, in Jinja's
"new style": variables go as keywords and are escaped (``_("%(n)s desks", n=n)``), so a
translation cannot break the page's HTML.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, negotiate_locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from fastapi import Request, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from hub.services.errors import ServiceError
from hub.services.wording import Language

#: The languages the pages speak, by their code, each named in itself (for the switcher).
LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT = "en"
COOKIE = "hafen_lang"
LOCALE_DIR = Path(__file__).parent / "locale"
#: A year: the choice is kept until the visitor changes it.
COOKIE_AGE = 365 * 86400


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of ``lang`` (English: the messages as written)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def choose(request: Request) -> str:
    """The language of the page for this request (see the module's docstring)."""
    for asked in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if asked in LANGUAGES:
            return asked
    header = request.headers.get("accept-language", "")[:500]
    preferred = [part.split(";")[0].strip().replace("-", "_") for part in header.split(",")]
    return negotiate_locale([p for p in preferred if p], list(LANGUAGES), sep="_") or DEFAULT


def keep_choice(request: Request, response: Response, lang: str) -> None:
    """Remember a language chosen with ``?lang=`` for the visitor's next pages."""
    if request.query_params.get("lang") == lang and request.cookies.get(COOKIE) != lang:
        response.set_cookie(
            COOKIE, lang, max_age=COOKIE_AGE, httponly=True, samesite="lax", path="/"
        )


def context(lang: str) -> dict[str, Any]:
    """What a template needs to speak ``lang``: ``_``/``gettext``/``ngettext`` (new style),
    ``lang`` itself, the switcher's languages, and dates formatted the language's way."""
    found = translations(lang)
    locale = Locale.parse(lang)
    gettext_, ngettext_ = _newstyle(found.gettext, found.ngettext)
    return {
        "_": gettext_,
        "gettext": gettext_,
        "ngettext": ngettext_,
        "lang": lang,
        "languages": LANGUAGES,
        "day": lambda value, fmt="full": format_date(value, fmt, locale=locale),
        "when": lambda value, fmt="short": format_datetime(value, fmt, locale=locale),
        #: A number the language's way, to one decimal: "3.2" and "3,2".
        "decimal": lambda value: format_decimal(value, "#,##0.0", locale=locale),
        #: A time of day on a site's clock: ``clock(visit.first_entry, visit.site_timezone)``.
        "clock": lambda value, zone: _clock(value, zone, locale),
        #: A month ``YYYY-MM`` by its name: "December 2026", "Dezember 2026".
        "month_name": lambda month: format_date(
            date.fromisoformat(f"{month}-01"), "LLLL yyyy", locale=locale
        ),
    }


def _clock(value: datetime, zone: str, locale: Locale) -> str:
    return format_time(value, "short", tzinfo=ZoneInfo(zone), locale=locale)


def _newstyle(
    gettext_: Callable[[str], str], ngettext_: Callable[[str, str, int], str]
) -> tuple[Callable[..., str], Callable[..., str]]:
    """Jinja's new-style gettext over one catalogue: keywords fill ``%(name)s``, escaped when
    the template autoescapes (as jinja2.ext does for the translations installed globally;
    here they are bound per request, so each visitor gets their own language)."""

    @pass_context
    def one(ctx: Context, message: str, **variables: Any) -> str:
        text: str = gettext_(message)
        if ctx.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables  # always, as jinja2.ext: a literal % is written %%

    @pass_context
    def many(ctx: Context, singular: str, plural: str, n: int, **variables: Any) -> str:
        variables.setdefault("num", n)
        text: str = ngettext_(singular, plural, n)
        if ctx.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return one, many


def translator(request: Request) -> Callable[[str], str]:
    """The visitor's ``gettext``, for the words a page's Python code says (a form's refusal):
    ``_ = translator(request)`` and then ``_("...")``, which ``make messages`` extracts."""
    return translations(choose(request)).gettext


@cache
def language(lang: str) -> Language:
    """How the services' words (hub.services.wording) are said in ``lang``: its catalogue,
    days as "09.12.2026" or "Dec 9, 2026", months by their name."""
    locale = Locale.parse(lang)
    return Language(
        gettext=translations(lang).gettext,
        day=lambda value: format_date(value, "medium", locale=locale),
        month=lambda first: format_date(first, "LLLL yyyy", locale=locale),
    )


def refusal(request: Request, error: ServiceError) -> str:
    """Why a service refused, in the visitor's language (a refused form's reason)."""
    return error.words.say(language(choose(request)))
