// Staff board: intake with vitals, the full result, acknowledge/override into the audit log,
// and the queue (most urgent first, then longest waiting) polled from the service's memory.
"use strict";
(function () {
  const ui = window.EdgeUI;
  const t = ui.t;
  const refreshMs = ui.client.settings.staffRefreshMs || 2000;
  const NUMERIC = ["age", "pain", "sbp", "dbp", "hr", "rr", "temp_c", "spo2"];
  let current = null; // the case detail shown in the result panel
  let lastQueue = null;

  const intake = document.getElementById("intake");
  const intakeMessage = document.getElementById("intake-message");
  const ackForm = document.getElementById("ack-form");
  const ackLevel = document.getElementById("ack-level");
  const ackReason = document.getElementById("ack-reason");
  const ackSubmit = document.getElementById("ack-submit");
  const ackMessage = document.getElementById("ack-message");

  function intakePayload() {
    const data = new FormData(intake);
    const out = {};
    for (const [key, raw] of data.entries()) {
      const value = String(raw).trim();
      if (value === "") continue;
      if (NUMERIC.includes(key)) out[key] = Number(value);
      else if (key === "injury") out[key] = value === "true";
      else out[key] = value;
    }
    return out;
  }

  intake.addEventListener("submit", async (event) => {
    event.preventDefault();
    intakeMessage.textContent = "";
    for (const node of intake.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    let result;
    try { result = await ui.post("/staff/api/triage", intakePayload()); } catch (e) { result = null; }
    if (!result || !result.ok) {
      intakeMessage.textContent = ui.errorText(result);
      const field = result && result.data && result.data.error && result.data.error.field;
      const input = field && intake.querySelector(`[name="${field}"]`);
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
      return;
    }
    showCase(result.data);
    refreshQueue();
  });

  function levelBadge(level, small) {
    const cls = "level-badge level-" + (level || "x") + (small ? " small" : "");
    return ui.el("span", { class: cls, text: level ? t("level." + level) : "–" });
  }

  function showCase(detail) {
    current = detail;
    const result = detail.result || {};
    const c = detail.case || {};
    document.getElementById("no-result").hidden = true;
    document.getElementById("result").hidden = false;
    const badge = document.getElementById("r-level");
    badge.className = "level-badge level-" + result.level;
    badge.textContent = t("level." + result.level);
    document.getElementById("r-complaint").textContent = c.complaint || "";
    const meta = [];
    if (result.scale) meta.push(t("staff.scale") + " " + String(result.scale).toUpperCase());
    if (result.model_level) meta.push(t("staff.model_level") + " " + result.model_level);
    const readAs = (result.read_as || {}).complaint;
    if (readAs) meta.push(t("staff.read_as") + " " + readAs);
    if (c.age !== undefined) meta.push(c.age + " y");
    if (c.sex) meta.push(c.sex);
    if (detail.source) meta.push(detail.source);
    document.getElementById("r-meta").textContent = meta.join(" · ");

    const review = document.getElementById("r-review");
    review.className = "review " + (result.review_required ? "required" : "none");
    review.textContent = result.review_required
      ? t("staff.review") + ": " + (result.reasons || []).join("; ")
      : t("staff.no_review");
    const degraded = document.getElementById("r-degraded");
    degraded.hidden = !result.degraded;
    degraded.textContent = result.degraded ? t("staff.degraded") + ": " + result.degraded : "";

    const probs = ui.clear(document.getElementById("r-probs"));
    (result.probabilities || []).forEach((p, i) => {
      const bar = ui.el("span", { class: "bar level-" + (i + 1) });
      bar.style.width = Math.round(p * 100) + "%";
      probs.append(ui.el("div", { class: "prob-row" }, [
        ui.el("span", { class: "prob-label", text: String(i + 1) }),
        ui.el("span", { class: "prob-track", role: "img", "aria-label": `${t("staff.level")} ${i + 1}: ${(p * 100).toFixed(1)} %` }, [bar]),
        ui.el("span", { class: "prob-value", text: (p * 100).toFixed(1) + " %" }),
      ]));
    });
    if (!result.probabilities) probs.append(ui.el("p", { class: "muted", text: t("status.unavailable") }));

    const rules = ui.clear(document.getElementById("r-rules"));
    for (const rule of result.rules_fired || []) {
      rules.append(ui.el("li", {}, [ui.el("strong", { text: rule.id }), " ", rule.text, " → " + rule.level]));
    }
    if (!(result.rules_fired || []).length) rules.append(ui.el("li", { class: "muted", text: t("staff.no_rules") }));

    const explanation = ui.clear(document.getElementById("r-explanation"));
    for (const item of result.explanation || []) {
      const sign = item.urgency_effect > 0 ? "+" : "";
      explanation.append(ui.el("li", {}, [
        ui.el("span", { class: "tag " + item.kind, text: item.kind }), " ",
        ui.el("strong", { text: item.name }), ` ${sign}${(item.urgency_effect * 100).toFixed(1)} %`,
      ]));
    }
    if (!(result.explanation || []).length) explanation.append(ui.el("li", { class: "muted", text: "–" }));

    ackLevel.value = String(detail.final_level || result.level);
    ackReason.value = detail.ack_reason || "";
    ackMessage.textContent = detail.acknowledged ? t("staff.acknowledged") : "";
    ackMessage.classList.toggle("ok", Boolean(detail.acknowledged));
    updateAckButton();
  }

  function updateAckButton() {
    const override = current && Number(ackLevel.value) !== (current.result || {}).level;
    ackSubmit.textContent = override ? t("staff.override") : t("staff.acknowledge");
    ackSubmit.classList.toggle("danger", Boolean(override));
  }
  ackLevel.addEventListener("change", updateAckButton);

  ackForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!current) return;
    const finalLevel = Number(ackLevel.value);
    const reason = ackReason.value.trim();
    if (finalLevel !== current.result.level && !reason) {
      ackMessage.textContent = t("staff.need_reason");
      ackMessage.classList.remove("ok");
      ackReason.setAttribute("aria-invalid", "true");
      ackReason.focus();
      return;
    }
    ackReason.removeAttribute("aria-invalid");
    let result;
    try {
      result = await ui.post("/staff/api/ack/" + encodeURIComponent(current.request_id),
        { final_level: finalLevel, reason: reason || null });
    } catch (e) { result = null; }
    ackMessage.textContent = result && result.ok ? t("staff.acknowledged") : ui.errorText(result);
    ackMessage.classList.toggle("ok", Boolean(result && result.ok));
    if (result && result.ok) {
      current.final_level = finalLevel;
      current.acknowledged = true;
      refreshQueue();
    }
  });

  async function openCase(requestId) {
    const result = await ui.get("/staff/api/case/" + encodeURIComponent(requestId));
    if (result.ok) {
      showCase(result.data);
      document.getElementById("result-title").scrollIntoView({ block: "nearest" });
    }
  }

  function renderQueue(snapshot) {
    const body = ui.clear(document.getElementById("queue-body"));
    document.getElementById("queue-empty").hidden = snapshot.cases.length > 0;
    for (const item of snapshot.cases) {
      const who = [item.age !== null && item.age !== undefined ? item.age + " y" : "", item.sex || ""].filter(Boolean).join(" ");
      const row = ui.el("tr", {
        class: [item.alert && !item.acknowledged ? "alert-row" : "", item.acknowledged ? "done-row" : ""].join(" ").trim(),
        "data-request-id": item.request_id,
      }, [
        ui.el("td", {}, [levelBadge(item.final_level || item.level, true)]),
        ui.el("td", {}, [ui.el("button", { type: "button", class: "link", text: item.complaint,
          onclick: () => openCase(item.request_id) })]),
        ui.el("td", { text: who || "–" }),
        ui.el("td", { text: item.source }),
        ui.el("td", { text: ui.formatDuration(item.waiting_s) }),
        ui.el("td", { text: item.acknowledged ? t("staff.state.acked") : t("staff.state.new") }),
      ]);
      body.append(row);
    }
    const banner = document.getElementById("alert-banner");
    const alerts = snapshot.alerts || [];
    banner.hidden = alerts.length === 0;
    if (alerts.length) {
      const first = snapshot.cases.find((c) => c.request_id === alerts[0]);
      document.getElementById("alert-text").textContent =
        (first && first.source === "kiosk" ? t("staff.alert") : t("staff.alert_any")) +
        (alerts.length > 1 ? ` (${alerts.length})` : "");
      banner.dataset.requestId = alerts[0];
    }
  }

  document.getElementById("alert-open").addEventListener("click", () => {
    const id = document.getElementById("alert-banner").dataset.requestId;
    if (id) openCase(id);
  });

  async function refreshQueue() {
    try {
      const result = await ui.get("/staff/api/queue");
      if (result.ok) { lastQueue = result.data; renderQueue(result.data); }
    } catch (e) { /* next poll retries */ }
  }

  intake.addEventListener("reset", () => { intakeMessage.textContent = ""; });
  refreshQueue();
  setInterval(refreshQueue, refreshMs);
})();
