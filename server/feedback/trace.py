"""Every number on a public feedback page must be traceable: inside an element whose `data-source` names a DP
release (`release:<id>`), a public figure (`public:<name>`) or an action-log entry (`action:<id>`)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

SOURCES = ("release:", "public:", "action:")
_DIGIT = re.compile(r"\d")
_VOID = {"meta", "br", "img", "hr", "input", "link"}


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []      # per open element: does it (or an ancestor) carry a source?
        self.skip = 0                     # inside <style> or <title>-free zones
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        source = dict(attrs).get("data-source") or ""
        traced = (bool(self.stack) and self.stack[-1]) or source.startswith(SOURCES)
        self.stack.append(traced)
        if tag == "style":
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if tag == "style":
            self.skip -= 1
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.skip or not _DIGIT.search(data):
            return
        if not (self.stack and self.stack[-1]):
            self.found.append(data.strip())


def untraceable(page: str) -> list[str]:
    """The texts holding a digit that no traced element encloses (empty: every number is traceable)."""
    scan = _Scan()
    scan.feed(page)
    scan.close()
    return scan.found
