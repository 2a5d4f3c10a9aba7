"""Templates in GOV.UK Notify's syntax, rendered without dependencies.

* ``((field))`` is replaced by the personalisation value; keys match ignoring case, spaces,
  ``_`` and ``-`` (Notify's ``InsensitiveDict``). A list value becomes a bulleted list in
  email and a comma-separated "a, b and c" in SMS and subjects.
* ``((field??text))`` shows ``text`` when the value is yes / true / 1 (Notify's
  ``str2bool``), and nothing otherwise. Both kinds of placeholder are required: an absent
  key is "Missing personalisation: <name>".
* Email bodies use Notify's markdown subset: ``#`` / ``##`` headings, ``*`` / ``-`` / ``•``
  bullets, ``1.`` numbered lists, paragraphs (single newlines are line breaks), ``[text](url)``
  and bare URLs as links, ``^`` inset text and ``---`` horizontal rules. Everything else is
  text: values are HTML-escaped, so personalisation cannot inject markup.
* SMS length: GSM-7 characters count one (``^{}\\[~]|€`` count two), a single character
  outside GSM-7 makes the whole message UCS-2; fragments as a phone splits them (160 / 153
  for GSM-7, 70 / 67 for UCS-2). Notify refuses a text over 918 characters.
"""

from __future__ import annotations

import functools
import html
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\(\(([^()\n]+)\)\)")
TRUTHY = frozenset({"yes", "y", "true", "t", "1", "include", "show"})
SMS_CHAR_LIMIT = 918
COLUMN_WIDTH = 65  # plain-text email: rules and heading underlines


_KEY_NOISE = re.compile(r"[\s_\-]")


@functools.lru_cache(maxsize=4096)
def normalise_key(key: str) -> str:
    return _KEY_NOISE.sub("", key).lower()


@dataclass(frozen=True)
class Placeholder:
    body: str  # between the brackets

    @property
    def is_conditional(self) -> bool:
        return "??" in self.body

    @property
    def name(self) -> str:
        return self.body.split("??", 1)[0].strip()

    @property
    def conditional_text(self) -> str:
        return self.body.split("??", 1)[1] if self.is_conditional else ""


def placeholders(*texts: str | None) -> list[str]:
    """Names of the placeholders in ``texts``, in order, without duplicates (first spelling)."""
    return list(_placeholders(texts))


@functools.lru_cache(maxsize=256)
def _placeholders(texts: tuple[str | None, ...]) -> tuple[str, ...]:
    # cached: a template's texts are parsed once, not on every message sent with them
    seen: dict[str, str] = {}
    for text in texts:
        for match in PLACEHOLDER.finditer(text or ""):
            name = Placeholder(match.group(1)).name
            seen.setdefault(normalise_key(name), name)
    return tuple(seen.values())


class MissingPersonalisation(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def _lookup(values: Mapping[str, Any]) -> dict[str, Any]:
    return {normalise_key(str(k)): v for k, v in values.items()}


def missing(values: Mapping[str, Any], *texts: str | None) -> list[str]:
    known = _lookup(values)
    return [n for n in placeholders(*texts) if normalise_key(n) not in known]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def formatted_list(items: Iterable[Any]) -> str:
    """ "a", "a and b", "a, b and c" (how Notify writes a list in a single line)."""
    values = [_as_text(v) for v in items if _as_text(v).strip()]
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " and " + values[-1]


def _is_shown(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return _as_text(value).strip().lower() in TRUTHY


def fill(text: str, values: Mapping[str, Any], *, markdown_lists: bool = False) -> str:
    """Replace every placeholder in ``text``; raises :class:`MissingPersonalisation`."""
    absent = missing(values, text)
    if absent:
        raise MissingPersonalisation(absent)
    known = _lookup(values)

    def replace(match: re.Match[str]) -> str:
        placeholder = Placeholder(match.group(1))
        value = known[normalise_key(placeholder.name)]
        if placeholder.is_conditional:
            return placeholder.conditional_text if _is_shown(value) else ""
        if isinstance(value, list | tuple):
            items = [_as_text(v) for v in value if _as_text(v).strip()]
            if markdown_lists and items:
                return "\n\n" + "\n".join(f"* {item}" for item in items) + "\n\n"
            return formatted_list(items)
        return _as_text(value)

    return PLACEHOLDER.sub(replace, text)


# -- email markdown --------------------------------------------------------------------------

_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)|(https?://[^\s<>\"]+[^\s<>\".,;:!?)])")
_BULLET = re.compile(r"^\s*[*\-•]\s+(.*)$")
_NUMBER = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_RULE = re.compile(r"^\s*(-\s*){3,}$|^\s*(\*\s*){3,}$")
_HEADING = re.compile(r"^(#{1,2})\s*(.+?)\s*#*$")


@dataclass(frozen=True)
class Block:
    kind: str  # heading1, heading2, paragraph, bullets, numbers, inset, rule
    lines: tuple[str, ...] = ()


def parse_blocks(text: str) -> list[Block]:
    """Split Notify markdown into blocks (the parse both renderers share)."""
    blocks: list[Block] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if _RULE.match(line):
            blocks.append(Block("rule"))
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(Block(f"heading{len(heading.group(1))}", (heading.group(2),)))
            i += 1
            continue
        for kind, pattern in (("bullets", _BULLET), ("numbers", _NUMBER)):
            if pattern.match(line):
                items: list[str] = []
                while i < len(lines) and lines[i].strip():
                    m = pattern.match(lines[i])
                    if m:
                        items.append(m.group(1).strip())
                    elif items:  # a continuation line of the item before
                        items[-1] += "\n" + lines[i].strip()
                    i += 1
                blocks.append(Block(kind, tuple(items)))
                break
        else:
            inset = line.lstrip().startswith("^")
            para: list[str] = []
            while (
                i < len(lines)
                and lines[i].strip()
                and not (
                    _RULE.match(lines[i])
                    or _HEADING.match(lines[i])
                    or _BULLET.match(lines[i])
                    or _NUMBER.match(lines[i])
                )
            ):
                para.append(
                    lines[i].strip().removeprefix("^").strip() if inset else lines[i].strip()
                )
                i += 1
            blocks.append(Block("inset" if inset else "paragraph", tuple(para)))
    return blocks


#: A markdown character escaped with a backslash (``sanitise_content_for`` escapes them):
#: shown as the character itself.
_ESCAPED = re.compile(r"\\([`*_()\\{}\[\]<>#+\-.!|])")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def _inline_html(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _LINK.finditer(text):
        out.append(html.escape(_unescape(text[pos : m.start()]), quote=False))
        label, url = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(3))
        out.append(f'<a href="{html.escape(url)}">{html.escape(label, quote=False)}</a>')
        pos = m.end()
    out.append(html.escape(_unescape(text[pos:]), quote=False))
    return "".join(out).replace("\n", "<br>")


def _inline_text(text: str) -> str:
    return _unescape(
        _LINK.sub(lambda m: f"{m.group(1)}: {m.group(2)}" if m.group(2) else m.group(3), text)
    )


def markdown_to_html(text: str) -> str:
    parts: list[str] = []
    for block in parse_blocks(text):
        if block.kind == "rule":
            parts.append("<hr>")
        elif block.kind == "heading1":
            parts.append(f"<h2>{_inline_html(block.lines[0])}</h2>")
        elif block.kind == "heading2":
            parts.append(f"<h3>{_inline_html(block.lines[0])}</h3>")
        elif block.kind in ("bullets", "numbers"):
            tag = "ul" if block.kind == "bullets" else "ol"
            items = "".join(f"<li>{_inline_html(item)}</li>" for item in block.lines)
            parts.append(f"<{tag}>{items}</{tag}>")
        elif block.kind == "inset":
            parts.append(
                f"<blockquote><p>{_inline_html(chr(10).join(block.lines))}</p></blockquote>"
            )
        else:
            parts.append(f"<p>{_inline_html(chr(10).join(block.lines))}</p>")
    return "\n".join(parts)


def markdown_to_text(text: str) -> str:
    parts: list[str] = []
    for block in parse_blocks(text):
        if block.kind == "rule":
            parts.append("=" * COLUMN_WIDTH)
        elif block.kind.startswith("heading"):
            parts.append(_inline_text(block.lines[0]) + "\n" + "-" * COLUMN_WIDTH)
        elif block.kind == "bullets":
            parts.append(
                "\n".join("• " + _inline_text(item).replace("\n", "\n  ") for item in block.lines)
            )
        elif block.kind == "numbers":
            parts.append(
                "\n".join(
                    f"{n}. " + _inline_text(item).replace("\n", "\n   ")
                    for n, item in enumerate(block.lines, 1)
                )
            )
        else:
            parts.append(_inline_text("\n".join(block.lines)))
    return "\n\n".join(parts) + "\n"


# -- SMS -------------------------------------------------------------------------------------

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
#: Characters Notify swaps for GSM-7 ones before sending, so they do not force UCS-2.
DOWNGRADES = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\t": " ",
}


@dataclass(frozen=True)
class SmsInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    length: int  # in characters of that encoding (extension characters count two in GSM-7)
    fragments: int

    @property
    def too_long(self) -> bool:
        return self.length > SMS_CHAR_LIMIT


def sms_text(text: str) -> str:
    """The text actually sent: Notify's downgrades applied, outer whitespace stripped."""
    return "".join(DOWNGRADES.get(c, c) for c in text).strip()


def sms_info(text: str) -> SmsInfo:
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        length = sum(2 if c in GSM_EXTENSION else 1 for c in text)
        fragments = 1 if length <= 160 else math.ceil(length / 153)
        return SmsInfo("GSM-7", length, fragments)
    length = sum(2 if ord(c) > 0xFFFF else 1 for c in text)  # UTF-16 code units
    fragments = 1 if length <= 70 else math.ceil(length / 67)
    return SmsInfo("UCS-2", length, fragments)


# -- rendering whole templates ---------------------------------------------------------------


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str  # the markdown with personalisation filled in (Notify's "body")
    html: str
    text: str


@dataclass(frozen=True)
class RenderedSms:
    body: str
    info: SmsInfo


def render_email(subject: str, body: str, values: Mapping[str, Any]) -> RenderedEmail:
    absent = missing(values, subject, body)
    if absent:
        raise MissingPersonalisation(absent)
    filled_subject = " ".join(fill(subject, values).split())
    filled = fill(body, values, markdown_lists=True)
    filled = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", filled)
    return RenderedEmail(
        subject=filled_subject,
        body=filled.strip(),
        html=markdown_to_html(filled),
        text=markdown_to_text(filled),
    )


def render_sms(body: str, values: Mapping[str, Any]) -> RenderedSms:
    text = sms_text(fill(body, values))
    return RenderedSms(body=text, info=sms_info(text))
