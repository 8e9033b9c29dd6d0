"""The one shape of every self-contained HTML report: inline CSS, no scripts, every text escaped.

Reports render where the ZenML dashboard blocks scripts and external resources, so each page is
one document built by hand; this is its frame and the escaping every value goes through.
"""

from __future__ import annotations

import html


def escape(value: object) -> str:
    """Any value as HTML text, quotes included (it may land in an attribute)."""
    return html.escape(str(value), quote=True)


def html_page(title: str, css: str, body: str) -> str:
    """One complete document around ``body`` (already HTML); ``title`` is escaped here."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{css}</style></head><body>{body}</body></html>\n"
    )
