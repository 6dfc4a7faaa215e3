// Kiosk: a patient enters the complaint, age, sex and pain. The answer is only ever the next
// step ("tell the staff now" or "take a seat"): the server never sends an acuity level here.
"use strict";
(function () {
  const ui = window.EdgeUI;
  const form = document.getElementById("kiosk-form");
  const formScreen = document.getElementById("kiosk-form-screen");
  const answer = document.getElementById("kiosk-answer");
  const message = document.getElementById("kiosk-message");
  const submit = document.getElementById("kiosk-submit");
  const idleMs = ui.client.settings.kioskIdleMs || 60000;
  const resultIdleMs = ui.client.settings.resultIdleMs || 30000;
  let idleTimer = null;

  function reset() {
    form.reset();
    message.textContent = "";
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    answer.hidden = true;
    answer.classList.remove("staff-now", "wait");
    document.getElementById("answer-title").textContent = "";
    document.getElementById("answer-body").textContent = "";
    formScreen.hidden = false;
    submit.disabled = false;
    submit.textContent = ui.t("kiosk.submit");
    document.body.dataset.kioskState = "ready";
    armIdle();
  }

  function armIdle(ms) {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(reset, ms || (answer.hidden ? idleMs : resultIdleMs));
  }

  // Any touch, key or typing restarts the idle clock.
  for (const type of ["pointerdown", "keydown", "input", "touchstart"]) {
    document.addEventListener(type, () => armIdle(), { passive: true });
  }

  function payload() {
    const data = new FormData(form);
    const out = { complaint: String(data.get("complaint") || "").trim() };
    const age = String(data.get("age") || "").trim();
    if (age !== "") out.age = Number(age);
    const sex = data.get("sex");
    if (sex) out.sex = sex;
    const pain = data.get("pain");
    if (pain !== null && pain !== "") out.pain = Number(pain);
    return out;
  }

  function showAnswer(action, title, body) {
    formScreen.hidden = true;
    answer.hidden = false;
    answer.classList.add(action === "staff_now" ? "staff-now" : "wait");
    document.getElementById("answer-title").textContent = title;
    document.getElementById("answer-body").textContent = body;
    document.body.dataset.kioskState = action;
    answer.focus();
    armIdle(resultIdleMs);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = payload();
    if (!body.complaint) {
      message.textContent = ui.t("kiosk.need_complaint");
      document.getElementById("complaint").setAttribute("aria-invalid", "true");
      document.getElementById("complaint").focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = ui.t("kiosk.sending");
    let result;
    try { result = await ui.post("/kiosk/api/submit", body); } catch (e) { result = null; }
    submit.disabled = false;
    submit.textContent = ui.t("kiosk.submit");
    const data = result && result.data;
    if (data && data.action === "fix") {
      message.textContent = data.message;
      const field = document.getElementById(data.field) || document.querySelector(`[name="${data.field}"]`);
      if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
      return;
    }
    if (data && (data.action === "staff_now" || data.action === "wait")) {
      showAnswer(data.action, data.title, data.body);
      return;
    }
    // No answer: send the patient to a person, never leave them guessing.
    showAnswer("staff_now", ui.t("kiosk.failed.title"), ui.t("kiosk.failed.body"));
  });

  document.getElementById("kiosk-done").addEventListener("click", reset);
  reset();
})();
