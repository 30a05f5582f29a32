"""A line page opened while every event stream is taken says so, and follows the line by itself once a stream
is free again (the browser alone would give up on the 503)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from station.web.line import WATCHERS
from tests.pages.conftest import OPERATOR, PASSWORD, Line, sign_in
from tests.web.test_hostile_access import Person, open_stream

FOLLOWS_WITHIN = 30_000  # ms: bounds the wait for the page's own retry; never a measurement


def test_a_line_page_refused_a_stream_retries_until_it_follows(page: Page, line: Line) -> None:
    sign_in(page, line)  # this page follows the line: one stream
    expect(page.locator("#tile-A")).to_be_visible()
    person = Person(line.server)
    assert person.sign_in(OPERATOR, PASSWORD).status_code == 302
    held = []
    for _ in range(WATCHERS * 3):  # take every stream that is left (the page's may still be connecting)
        status, sock = open_stream(line.server.port, person.cookie())
        if status != 200:
            break
        held.append(sock)
    assert held and len(held) < WATCHERS + 1
    late = page.context.new_page()
    try:
        late.goto(line.url + "/")
        expect(late.locator("#problem")).to_contain_text("not following the line", timeout=FOLLOWS_WITHIN)
        for sock in held:
            sock.close()
        expect(late.locator("#problem")).to_be_hidden(timeout=FOLLOWS_WITHIN)
    finally:
        late.close()
        for sock in held:
            sock.close()
