"""A patient at the kiosk with a red-flag complaint → the staff board alerts → the nurse
overrides the level → the audit log holds the override. Plus a normal kiosk entry and the
kiosk's idle reset. Real server, real Chromium, real SQLite."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.timeout(180)


def _fill_kiosk(page, complaint: str, age: int, sex_label: str, pain: int) -> None:
    page.get_by_label("What is the main problem?").fill(complaint)
    page.get_by_label("Your age (years)").fill(str(age))
    page.locator("#kiosk-form").get_by_text(sex_label, exact=True).click()
    page.locator(f'label[for="pain-{pain}"]').click()


def test_red_flag_kiosk_alerts_staff_and_override_is_audited(start_service, page_factory):
    from playwright.sync_api import expect

    service = start_service()
    staff = page_factory("1280x800")
    staff.goto(service.url + "/staff")
    expect(staff.locator("#queue-empty")).to_be_visible()
    expect(staff.locator("#alert-banner")).to_be_hidden()

    kiosk = page_factory("800x480")
    kiosk.goto(service.url + "/")
    screenshot(kiosk, "kiosk-form")
    _fill_kiosk(kiosk, "crushing chest pain and sweating", 62, "Male", 8)
    kiosk.get_by_role("button", name="Send").click()

    answer = kiosk.locator("#kiosk-answer")
    expect(answer).to_be_visible()
    expect(answer.locator("h1")).to_have_text("Tell the staff now")
    # The patient never sees an acuity level: no level words, no level numbers, no probabilities.
    text = answer.inner_text()
    assert not re.search(r"\blevel\b|resuscitation|emergent|non-urgent|\d\s*%", text, re.IGNORECASE)
    screenshot(kiosk, "kiosk-staff-now")

    # The staff board (already open, polling) raises the alert for the kiosk case.
    banner = staff.locator("#alert-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Patient at the kiosk needs staff now")
    row = staff.locator("#queue-body tr").first
    expect(row).to_have_class(re.compile("alert-row"))
    expect(row).to_contain_text("crushing chest pain and sweating")
    expect(row).to_contain_text("kiosk")
    screenshot(staff, "staff-alert")

    # Open the alerted case and read the full result.
    banner.get_by_role("button", name="Open").click()
    result = staff.locator("#result")
    expect(result).to_be_visible()
    expect(staff.locator("#r-complaint")).to_have_text("crushing chest pain and sweating")
    expect(staff.locator("#r-rules")).to_contain_text("C-CHEST-RISK")
    expect(staff.locator("#r-review")).to_contain_text("Clinician review required")
    assert staff.locator("#r-probs .prob-row").count() == 5
    level_text = staff.locator("#r-level").inner_text()
    level = int(level_text.split()[0])
    assert level <= 2

    # The nurse overrides to level 1 with a reason: the reason is required first.
    staff.get_by_label("Final level").select_option("1" if level != 1 else "2")
    final = 1 if level != 1 else 2
    expect(staff.locator("#ack-submit")).to_have_text("Override")
    staff.locator("#ack-submit").click()
    expect(staff.locator("#ack-message")).to_have_text("Give a reason for the override.")
    staff.get_by_label("Reason (required for an override)").fill("ST elevation on ECG at the desk")
    staff.locator("#ack-submit").click()
    expect(staff.locator("#ack-message")).to_have_text("Recorded in the audit log")
    expect(banner).to_be_hidden()
    expect(staff.locator("#queue-body tr").first).to_contain_text("done")
    screenshot(staff, "staff-override")

    request_id = staff.locator("#queue-body tr").first.get_attribute("data-request-id")
    decisions = service.audit_rows("SELECT level, source FROM decisions WHERE request_id = ?", (request_id,))
    assert decisions == [(level, "kiosk")]
    acks = service.audit_rows("SELECT action, final_level, reason FROM acknowledgements WHERE request_id = ?",
                              (request_id,))
    assert acks == [("override", final, "ST elevation on ECG at the desk")]
    assert kiosk.js_errors == [] and staff.js_errors == []


def test_normal_kiosk_entry_says_take_a_seat(start_service, page_factory):
    from playwright.sync_api import expect

    service = start_service()
    kiosk = page_factory("1280x800")
    kiosk.goto(service.url + "/")
    _fill_kiosk(kiosk, "rash on arm", 25, "Female", 2)
    kiosk.get_by_role("button", name="Send").click()
    expect(kiosk.locator("#kiosk-answer h1")).to_have_text("Thank you. Please take a seat.")
    screenshot(kiosk, "kiosk-wait")

    # It reached the staff queue without an alert, and the audit log as a kiosk decision.
    queue = service.app.extensions["edge_web"].queue.snapshot()
    assert [c["complaint"] for c in queue["cases"]] == ["rash on arm"]
    assert queue["alerts"] == []
    assert queue["cases"][0]["level"] >= 3
    assert service.audit_rows("SELECT source FROM decisions") == [("kiosk",)]
    assert kiosk.js_errors == []


def test_kiosk_idle_timeout_clears_the_screen(start_service, page_factory):
    from playwright.sync_api import expect

    service = start_service(web={"kiosk_idle_s": 1.0, "result_idle_s": 1.0})
    kiosk = page_factory("800x480")
    kiosk.goto(service.url + "/")
    # A half-filled form is wiped when the patient walks away.
    kiosk.get_by_label("What is the main problem?").fill("headache")
    kiosk.get_by_label("Your age (years)").fill("41")
    expect(kiosk.get_by_label("What is the main problem?")).to_have_value("")
    expect(kiosk.get_by_label("Your age (years)")).to_have_value("")

    # So is an answer screen: the next patient never sees the previous one's.
    _fill_kiosk(kiosk, "rash", 30, "Male", 1)
    kiosk.get_by_role("button", name="Send").click()
    expect(kiosk.locator("#kiosk-answer")).to_be_visible()
    expect(kiosk.locator("#kiosk-answer")).to_be_hidden()
    expect(kiosk.locator("#kiosk-form-screen")).to_be_visible()
    expect(kiosk.get_by_label("What is the main problem?")).to_have_value("")
    assert kiosk.locator("input[name=pain]:checked").count() == 0
    assert kiosk.js_errors == []
