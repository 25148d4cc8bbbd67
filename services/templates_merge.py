"""Invitation and reminder messages: merge fields, default wording, and safe rendering.

A template is text with ``{{name}}`` merge fields and nothing else: no expressions, no filters,
no attribute access, so a template can neither reach into the application (as a Jinja template
could) nor do anything but insert the values below. Rendering is one regular-expression
substitution:

* the plain-text part and the subject get the values as they are (the subject on one line);
* the HTML part is first reduced to a small allow-list of tags and attributes (``sanitize_html``:
  no script, no style, no event handlers, links only to http(s), mailto or a merge field), then
  every merged value is HTML-escaped. What a researcher types can format the message, never run
  in a mail client or in a colleague's preview.

Unknown merge fields are refused when a template is saved (``check``) and render as nothing.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

# Every character Python's email package (and str.splitlines) treats as a line end: one in a
# Subject header would end the header and let the rest be read as headers of its own.
LINE_BREAK_RE = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
SUBJECT_LINE_BREAK = ("Subject: write the subject on one line (it contains a line break: CR, LF or another "
                      "line separator, which would let the subject add email headers of its own).")
FIELD_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
BRACES_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)  # anything in double braces, field or not

COMMON_FIELDS = ("first_name", "researcher_name", "deadline", "accept_link", "unsubscribe_link")
TARGET_FIELDS = {
    "study": ("study_name",),
    "activity": ("task_name", "study_name"),
    "community": ("community_name",),
}
FIELD_HELP = {
    "first_name": "The participant's first name (\"there\" when unknown)",
    "study_name": "The study's name",
    "task_name": "The task's (activity's) name",
    "community_name": "The community's name",
    "researcher_name": "Who invites: the plan's or study's researcher",
    "deadline": "The study's closing date or the task's due date, else when the link expires",
    "accept_link": "The participant's personal link to accept or decline",
    "unsubscribe_link": "The participant's personal link to stop all messages",
}
KINDS = ("invitation", "reminder")
KIND_LABELS = {"invitation": "Invitation", "reminder": "Reminder"}


def fields_for(target_type: str) -> tuple[str, ...]:
    return TARGET_FIELDS[target_type] + COMMON_FIELDS


@dataclass(frozen=True)
class Template:
    subject: str
    body_text: str
    body_html: str | None
    saved: bool = False  # False: the default wording


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


# --- default wording -------------------------------------------------------------------------

_NAME_FIELD = {"study": "study_name", "activity": "task_name", "community": "community_name"}
_WHAT = {"study": "a research study", "activity": "a research task", "community": "our research community"}


def default_template(target_type: str, kind: str = "invitation") -> Template:
    name = "{{%s}}" % _NAME_FIELD[target_type]
    what = _WHAT[target_type]
    join = "join" if target_type == "community" else "take part in"
    if kind == "reminder":
        subject = f"Reminder: you're invited to {name}"
        opening = f"A quick reminder: {{{{researcher_name}}}} invited you to {join} {what}, {name}."
    else:
        subject = f"You're invited: {name}"
        opening = f"{{{{researcher_name}}}} would like to invite you to {join} {what}, {name}."
    text = (f"Hi {{{{first_name}}}},\n\n{opening}\n\n"
            "You can read what it involves, and accept or decline, here:\n{{accept_link}}\n\n"
            "Please reply by {{deadline}}.\n\nThank you,\n{{researcher_name}}\n\n"
            "--\nTo stop receiving research invitations from us: {{unsubscribe_link}}\n")
    body_html = (f"<p>Hi {{{{first_name}}}},</p>\n<p>{opening}</p>\n"
                 '<p><a href="{{accept_link}}">See the details and reply</a></p>\n'
                 "<p>Please reply by {{deadline}}.</p>\n<p>Thank you,<br>{{researcher_name}}</p>\n"
                 '<p><small><a href="{{unsubscribe_link}}">Stop receiving research invitations</a></small></p>\n')
    return Template(subject, text, body_html, saved=False)


# --- checking and rendering --------------------------------------------------------------------

def fields_in(source: str | None) -> set[str]:
    return {m.group(1) for m in FIELD_RE.finditer(source or "")}


def unknown_fields(source: str | None, target_type: str) -> list[str]:
    allowed = set(fields_for(target_type))
    found = set()
    for match in BRACES_RE.finditer(source or ""):
        name = match.group(1).strip()
        if name not in allowed:
            found.add(name)
    return sorted(found)


def check(subject: str, body_text: str, body_html: str | None, target_type: str) -> list[str]:
    """Problems that stop a template from being saved (empty list: fine)."""
    problems = []
    for label, source in (("Subject", subject), ("Text", body_text), ("HTML", body_html)):
        bad = unknown_fields(source, target_type)
        if bad:
            problems.append(f"{label}: unknown merge field{'s' if len(bad) > 1 else ''} "
                            + ", ".join("{{%s}}" % b for b in bad))
    if not (subject or "").strip():
        problems.append("Subject: write a subject.")
    elif has_line_break(subject):
        problems.append(SUBJECT_LINE_BREAK)
    if not (body_text or "").strip():
        problems.append("Text: write the plain-text message.")
    for label, source in (("Text", body_text), ("HTML", body_html)):
        if not (source or "").strip():
            continue  # no HTML part saved: one is made from the text
        used = fields_in(source)
        if "accept_link" not in used:
            problems.append(f"{label}: include {{{{accept_link}}}} so the person can reply.")
        if "unsubscribe_link" not in used:
            problems.append(f"{label}: include {{{{unsubscribe_link}}}}: every message must let the person opt out.")
    return problems


def has_line_break(text: str | None) -> bool:
    return bool(LINE_BREAK_RE.search(text or ""))


def one_line(text: str | None) -> str:
    """``text`` with every line break replaced by a space (a header value stays one line)."""
    return LINE_BREAK_RE.sub(" ", text or "")


def merge_text(source: str, values: dict[str, str]) -> str:
    return FIELD_RE.sub(lambda m: str(values.get(m.group(1), "")), source or "")


def merge_subject(source: str, values: dict[str, str]) -> str:
    # A header is one line: a value with a line break must not add headers or split the subject.
    return " ".join(merge_text(source, values).split())[:300]


def merge_html(source: str, values: dict[str, str]) -> str:
    return FIELD_RE.sub(lambda m: html.escape(str(values.get(m.group(1), "")), quote=True),
                        sanitize_html(source or ""))


def text_to_html(text: str) -> str:
    """An HTML part for a template saved without one: paragraphs, line breaks, links."""
    paragraphs = [p for p in re.split(r"\n\s*\n", (text or "").strip()) if p.strip()]
    out = []
    for para in paragraphs:
        lines = []
        for line in para.split("\n"):
            escaped = html.escape(line, quote=True)
            # A merge field alone on a line that is a link: make it clickable.
            escaped = re.sub(r"\{\{\s*(accept_link|unsubscribe_link)\s*\}\}",
                             lambda m: '<a href="{{%s}}">{{%s}}</a>' % (m.group(1), m.group(1)), escaped)
            lines.append(escaped)
        out.append("<p>" + "<br>\n".join(lines) + "</p>")
    return "\n".join(out)


def render(template: Template, values: dict[str, str]) -> Rendered:
    body_html = template.body_html if (template.body_html or "").strip() else text_to_html(template.body_text)
    return Rendered(subject=merge_subject(template.subject, values), text=merge_text(template.body_text, values),
                    html=merge_html(body_html, values))


# --- the HTML allow-list --------------------------------------------------------------------------

ALLOWED_TAGS = {"p", "br", "strong", "b", "em", "i", "u", "a", "ul", "ol", "li", "h1", "h2", "h3",
                "blockquote", "small", "span", "div", "hr"}
VOID_TAGS = {"br", "hr"}
DROP_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript", "title", "head",
                "svg", "math", "textarea", "select"}
SAFE_HREF = re.compile(r"^(https?://|mailto:|\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}$)", re.IGNORECASE)


class _Sanitizer(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropping = 0

    def handle_starttag(self, tag, attrs):
        if tag in DROP_CONTENT:
            self.dropping += 1
            return
        if self.dropping or tag not in ALLOWED_TAGS:
            return
        kept = ""
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), None)
            if href and SAFE_HREF.match(href.strip()):
                kept = f' href="{html.escape(href.strip(), quote=True)}"'
        self.out.append(f"<{tag}{kept}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in self.open and self.open[-1] == tag and tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in DROP_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag not in self.open:
            return
        while self.open:
            closing = self.open.pop()
            self.out.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data):
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))

    def close_all(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out)


def sanitize_html(source: str) -> str:
    """Keep only allow-listed tags (no attributes but a safe ``href``); text is re-escaped,
    comments, doctype and processing instructions are dropped, unclosed tags are closed."""
    parser = _Sanitizer()
    parser.feed(source or "")
    return parser.close_all()
