"""The frame every HTML report shares: one document, inline CSS, everything escaped."""

from __future__ import annotations

from prime_model.html_page import escape, html_page


def test_a_page_is_one_escaped_document() -> None:
    page = html_page('<b>"x" & y</b>', "p{color:red}", "<p>body</p>")
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">') and page.endswith("</html>\n")
    assert "<title>&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;</title>" in page
    assert "<style>p{color:red}</style>" in page and "<body><p>body</p></body>" in page
    assert escape("it's") == "it&#x27;s" and escape(3) == "3"
