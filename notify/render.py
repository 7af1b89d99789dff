"""Reply templates rendered by jinja2: strict variables, escaped HTML, found as package data."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, select_autoescape
from jinja2.loaders import split_template_path

from notify.subjects import one_line, single_reply_prefix

TEMPLATE_PACKAGE = "templates"
MAX_SUBJECT_CHARS = 200
_REPLY_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SYMBOL_FIRST = {"USD": "$"}  # the one currency the product shows with its symbol


@dataclass(frozen=True)
class RenderedReply:
    subject: str  # one line, no control characters, at most 200 characters
    text: str
    html: str


class PackageResourceLoader(BaseLoader):
    """Templates read through importlib.resources: a checkout, an installed wheel or a zip."""

    def __init__(self, package: str = TEMPLATE_PACKAGE) -> None:
        self.package = package

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        resource = files(self.package)
        for piece in split_template_path(template):  # refuses `..` and absolute names
            resource = resource.joinpath(piece)
        if not resource.is_file():
            raise TemplateNotFound(template)
        # Package data does not change under a running process: always up to date.
        return resource.read_text(encoding="utf-8"), str(resource), lambda: True


def make_environment(loader: BaseLoader | None = None) -> Environment:
    """The one jinja2 set-up of the service; tests pass a DictLoader."""
    environment = Environment(
        loader=loader or PackageResourceLoader(),
        undefined=StrictUndefined,  # a missing variable fails a test, not a customer's mail
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=True,
        trim_blocks=True,  # `{% for %}` lines in body.txt leave no blank lines behind
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters.update(money=money, tokens=tokens, percent=percent)
    return environment


@cache
def default_environment() -> Environment:
    return make_environment()


def render_reply(
    name: str, context: Mapping[str, Any], environment: Environment | None = None
) -> RenderedReply:
    """`templates/<name>/subject.txt, body.txt, body.html` rendered with one context."""
    if not _REPLY_NAME.match(name):
        raise ValueError(f"not a reply template name: {name!r}")
    env = environment or default_environment()

    def render(part: str) -> str:
        return env.get_template(f"{name}/{part}").render(context)

    # `Re: {{ original_subject }}` of a reply to a reply: the same text compose puts in the header.
    subject = single_reply_prefix(one_line(render("subject.txt")))[:MAX_SUBJECT_CHARS].rstrip()
    return RenderedReply(subject=subject, text=render("body.txt"), html=render("body.html"))


def money(amount: Decimal | int, currency: str) -> str:
    """`1,234.56 EUR`, or `$1,234.56` for USD; at least two decimals, more when the amount
    has them (unit prices), never rounded here."""
    value = _exact(amount)
    if not _CURRENCY.match(currency):
        raise ValueError(f"not a currency code: {currency!r}")
    places = max(2, -int(value.normalize().as_tuple().exponent))
    digits = f"{abs(value):,.{places}f}"
    sign = "-" if value < 0 else ""
    symbol = _SYMBOL_FIRST.get(currency)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency}"


def tokens(count: Decimal | int) -> str:
    """`12,345,678`: a count with thousands separators."""
    return f"{_exact(count):,f}"


def percent(change: Decimal | int) -> str:
    """`+12.5%`, `-3%`, `0%`: a signed change, as many decimals as given."""
    value = _exact(change)
    sign = "+" if value > 0 else ""
    return f"{sign}{value:,f}%"


def _exact(value: object) -> Decimal:
    # Money stays Decimal to the last character: a float here is a bug upstream, and None
    # (a rate not yet known) must be handled by the template, not printed as "None".
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"expected a Decimal or int, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite number: {number}")
    return number
