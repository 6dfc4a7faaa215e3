"""Keyboard-only use of the kiosk and the staff board, and WCAG AA text contrast measured in the
rendered pages (computed colours against the nearest opaque background)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(180)

# Every visible text node: contrast ratio of its colour against the nearest opaque background.
CONTRAST_JS = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(parseFloat); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = ({ r, g, b }) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
    if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
  const bad = []; let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode; const el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el); if (style.visibility === 'hidden') continue;
    const rect = el.getBoundingClientRect(); if (rect.right < 0 || rect.bottom < 0) continue;
    const fg = parse(style.color), bg = background(el);
    const l1 = lum(fg), l2 = lum(bg); const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66); checked += 1;
    if (ratio < (large ? 3 : 4.5)) bad.push(`${node.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return { bad, checked };
}"""


def _assert_contrast(page, minimum_checked: int = 6) -> None:
    report = page.evaluate(CONTRAST_JS)
    assert report["checked"] >= minimum_checked
    assert report["bad"] == []


def test_kiosk_by_keyboard_alone_and_its_contrast(start_service, page_factory):
    from playwright.sync_api import expect

    service = start_service()
    page = page_factory("800x480")
    page.goto(service.url + "/")
    _assert_contrast(page)
    page.keyboard.press("Tab")  # skip link first
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#complaint")).to_be_focused()
    page.keyboard.type("suicidal thoughts")
    page.keyboard.press("Tab")
    expect(page.locator("#age")).to_be_focused()
    page.keyboard.type("34")
    page.keyboard.press("Tab")  # into the sex radio group
    page.keyboard.press("Space")
    expect(page.locator("#sex-f")).to_be_checked()
    page.keyboard.press("Tab")  # into the pain scale
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#pain-3")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.locator("#kiosk-submit")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#kiosk-answer h1")).to_have_text("Tell the staff now")
    expect(page.locator("#kiosk-answer")).to_be_focused()
    _assert_contrast(page, minimum_checked=3)  # title, message, button
    page.keyboard.press("Tab")
    expect(page.locator("#kiosk-done")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#complaint")).to_have_value("")
    assert page.js_errors == []


def test_staff_board_by_keyboard_and_contrast_of_every_level(start_service, page_factory):
    from playwright.sync_api import expect

    service = start_service()
    page = page_factory("1280x800")
    page.goto(service.url + "/staff")
    page.locator("#s-complaint").focus()
    page.keyboard.type("ankle sprain after a fall")
    page.keyboard.press("Tab")
    page.keyboard.type("27")
    page.keyboard.press("Enter")  # submits the intake form from any field
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#queue-body tr")).to_have_count(1)
    # The queue row opens by keyboard too.
    page.locator("#queue-body button.link").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#r-complaint")).to_have_text("ankle sprain after a fall")
    _assert_contrast(page)
    # Every level colour in the queue meets AA: put one case of each level on the board.
    queue = service.app.extensions["edge_web"].queue
    for level in range(1, 6):
        queue.listener({"complaint": f"level {level} sample"}, {"request_id": f"L{level}", "level": level}, "api")
    expect(page.locator("#queue-body tr")).to_have_count(6)
    _assert_contrast(page)
    page.goto(service.url + "/status")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    _assert_contrast(page)
    assert page.js_errors == []
    # The check itself can fail: light grey text on white (2.3:1) is reported.
    page.evaluate("""() => { const p = document.createElement('p'); p.textContent = 'too faint';
        p.style.color = '#aaaaaa'; p.style.background = '#ffffff'; document.querySelector('main').prepend(p); }""")
    assert page.evaluate(CONTRAST_JS)["bad"] == ["too faint: 2.32"]
