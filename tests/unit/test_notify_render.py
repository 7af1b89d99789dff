"""Templates render strictly: a missing variable fails, HTML is escaped and text is not,
the subject is one safe line, money is Decimal to the last character."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from jinja2 import DictLoader, Environment, TemplateNotFound, UndefinedError

from notify.render import make_environment, money, percent, render_reply, tokens

ROOT = Path(__file__).resolve().parents[2]
HELP_CONTEXT = {
    "import_id": 42,
    "original_subject": "Our invoices",
    "import_address": "import+tok@stax.localhost",
    "support_address": "support@stax.localhost",
}


def environment(subject: str, text: str, html: str) -> Environment:
    """One reply `r` from strings, with the service's own environment settings."""
    files = {"r/subject.txt": subject, "r/body.txt": text, "r/body.html": html}
    return make_environment(DictLoader(files))


def test_the_shipped_help_reply_renders_from_the_package() -> None:
    reply = render_reply("help", HELP_CONTEXT)
    assert reply.subject == "Re: Our invoices"
    assert "import+tok@stax.localhost" in reply.text and "42" in reply.text
    assert 'href="mailto:import+tok@stax.localhost"' in reply.html
    assert reply.text.endswith("\n")  # keep_trailing_newline


def test_a_missing_variable_raises_instead_of_printing_nothing() -> None:
    context = {k: v for k, v in HELP_CONTEXT.items() if k != "support_address"}
    with pytest.raises(UndefinedError, match="support_address"):
        render_reply("help", context)


def test_html_is_escaped_and_text_is_not() -> None:
    env = environment("Re: {{ name }}", "File {{ name }}\n", "<p>File {{ name }}</p>\n")
    reply = render_reply("r", {"name": "<script>alert(1)</script>.pdf"}, env)
    assert reply.text == "File <script>alert(1)</script>.pdf\n"
    assert reply.html == "<p>File &lt;script&gt;alert(1)&lt;/script&gt;.pdf</p>\n"
    assert reply.subject == "Re: <script>alert(1)</script>.pdf"


def test_the_subject_is_one_bounded_line_without_control_characters() -> None:
    env = environment("Re: {{ s }}\n", "", "")
    hostile = render_reply("r", {"s": "a\r\nBcc: victim@x.example\x00\x1b[31m"}, env)
    assert hostile.subject == "Re: a Bcc: victim@x.example [31m"
    long = render_reply("r", {"s": "word " * 100}, env)
    assert len(long.subject) <= 200 and long.subject.startswith("Re: word word")


def test_the_rendered_subject_never_doubles_re() -> None:
    reply = render_reply("help", HELP_CONTEXT | {"original_subject": "RE: Re: Mistral import"})
    assert reply.subject == "Re: Mistral import"


def test_loops_in_text_leave_no_blank_lines() -> None:
    text = "Files:\n{% for f in files %}\n- {{ f }}\n{% endfor %}\nEnd\n"
    reply = render_reply("r", {"files": ["a.pdf", "b.csv"]}, environment("s", text, ""))
    assert reply.text == "Files:\n- a.pdf\n- b.csv\nEnd\n"


def test_names_that_are_not_reply_folders_are_refused() -> None:
    with pytest.raises(ValueError):
        render_reply("../config", {})
    with pytest.raises(TemplateNotFound):
        render_reply("no_such_reply", {})


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("1234.56"), "EUR", "1,234.56 EUR"),
        (Decimal("1234.5"), "USD", "$1,234.50"),
        (Decimal("-3.1"), "USD", "-$3.10"),
        (Decimal("0.0017"), "USD", "$0.0017"),
        (Decimal("1E+3"), "EUR", "1,000.00 EUR"),
        (Decimal("0"), "EUR", "0.00 EUR"),
        (12, "EUR", "12.00 EUR"),
    ],
)
def test_money(amount: Decimal | int, currency: str, shown: str) -> None:
    assert money(amount, currency) == shown


def test_money_refuses_floats_none_and_bad_currencies() -> None:
    with pytest.raises(TypeError):
        money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        money(None, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        money(True, "EUR")
    with pytest.raises(ValueError):
        money(Decimal("NaN"), "EUR")
    with pytest.raises(ValueError):
        money(Decimal(1), "euro")


def test_tokens_and_percent() -> None:
    assert tokens(12345678) == "12,345,678"
    assert tokens(Decimal("48211930")) == "48,211,930"
    assert percent(Decimal("12.5")) == "+12.5%"
    assert percent(Decimal("-3.25")) == "-3.25%"
    assert percent(0) == "0%"


def test_filters_in_a_template() -> None:
    html = "{{ a|money('EUR') }} / {{ u|money('USD') }} / {{ t|tokens }} / {{ p|percent }}"
    context = {"a": Decimal("81.96"), "u": Decimal("94.13"), "t": 48211930, "p": Decimal("4")}
    reply = render_reply("r", context, environment("s", "", html))
    assert reply.html == "81.96 EUR / $94.13 / 48,211,930 / +4%"


def test_templates_are_found_when_installed_as_a_zip_not_only_in_a_checkout(
    tmp_path: Path,
) -> None:
    # importlib.resources, not paths beside __file__: the packages are imported from a zip.
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for package in ("notify", "templates"):
            for file in (ROOT / package).rglob("*"):
                if file.is_file() and "__pycache__" not in file.parts:
                    bundle.write(file, file.relative_to(ROOT).as_posix())
    code = (
        "import templates, notify.render as r; assert '.zip' in templates.__file__; "
        f"print(r.render_reply('help', {HELP_CONTEXT!r}).subject)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(archive)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Re: Our invoices"
