// Device status: temperatures with a small SVG history chart per sensor (drawn here, no
// libraries), board power (total with its history, by rail), throttle/power flags, memory and pressure, latency, policy, model and evaluation.
"use strict";
(function () {
  const ui = window.EdgeUI;
  const t = ui.t;
  const refreshMs = ui.client.settings.statusRefreshMs || 5000;
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  // lo/hi: the smallest range shown (°C by default), span: the least height of the range.
  function chart(points, limit, label, lo0 = 30, hi0 = 50, span = 5) {
    const width = 220, height = 48, pad = 3;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img", "aria-label": label });
    const values = points.map((p) => p[1]);
    if (limit) values.push(limit);
    let lo = Math.min(...values, lo0), hi = Math.max(...values, hi0);
    if (hi - lo < span) hi = lo + span;
    const x = (i) => pad + (points.length <= 1 ? width - 2 * pad : (i * (width - 2 * pad)) / (points.length - 1));
    const y = (v) => height - pad - ((v - lo) * (height - 2 * pad)) / (hi - lo);
    root.append(svg("rect", { x: 0, y: 0, width, height, class: "spark-bg" }));
    if (limit) root.append(svg("line", { x1: 0, x2: width, y1: y(limit), y2: y(limit), class: "spark-limit" }));
    if (points.length === 1) {
      root.append(svg("circle", { cx: x(0), cy: y(points[0][1]), r: 2.5, class: "spark-dot" }));
    } else if (points.length > 1) {
      root.append(svg("polyline", { points: points.map((p, i) => `${x(i).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "), class: "spark-line" }));
    }
    return root;
  }

  function table(rows, headers) {
    const body = ui.el("tbody", {}, rows.map((cells) => ui.el("tr", {}, cells.map((c, i) =>
      i === 0 ? ui.el("th", { scope: "row" }, [c]) : ui.el("td", {}, [c])))));
    const head = headers ? ui.el("thead", {}, [ui.el("tr", {}, headers.map((h) => ui.el("th", { scope: "col", text: h })))]) : null;
    return ui.el("table", { class: "kv" }, [head, body]);
  }

  function fmt(key, value) {
    if (value === null || value === undefined) return t("status.unavailable");
    if (typeof value === "number") {
      if (key.endsWith("_mb")) return value.toFixed(0) + " MB";
      if (key.endsWith("_bytes")) return (value / 1048576).toFixed(0) + " MB";
      if (key.endsWith("_ms")) return value.toFixed(1) + " ms";
      if (key.endsWith("_ratio")) return (value * 100).toFixed(0) + " %";
      return Number.isInteger(value) ? String(value) : value.toFixed(3);
    }
    if (Array.isArray(value)) return value.map((v) => fmt("", v)).join(", ");
    if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${fmt(k, v)}`).join(", ");
    return String(value);
  }

  function flatten(value, prefix, out) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    } else {
      out.push([prefix, value]);
    }
    return out;
  }

  // A readable label from the strings table when there is one, else the machine name.
  function label(key) {
    const text = t("metric." + key);
    return text === "metric." + key ? key.replace(/_/g, " ") : text;
  }

  function emptyNote(text) { return ui.el("p", { class: "muted", text }); }

  function renderTemps(temps) {
    const box = ui.clear(document.getElementById("temps"));
    if (!temps.length) { box.append(emptyNote(t("status.no_sensors"))); return; }
    for (const z of temps) {
      // Colour by the adaptive policy's thresholds; fall back to the kernel's trip points.
      const limit = z.critical_c || z.trip_passive_c || z.trip_critical_c;
      const hot = z.hot_c ? z.celsius >= z.hot_c : limit && z.celsius >= limit - 5;
      box.append(ui.el("div", { class: "temp-row" + (hot ? " hot" : ""), "data-sensor": z.name }, [
        ui.el("div", { class: "temp-text" }, [
          ui.el("strong", { text: z.name }),
          ui.el("span", { class: "temp-value", text: z.celsius.toFixed(1) + " °C" }),
          limit ? ui.el("span", { class: "muted", text: " / " + limit.toFixed(0) + " °C" }) : null,
        ]),
        chart(z.history || [], limit, `${z.name} ${z.celsius.toFixed(1)} °C`),
      ]));
    }
  }

  function renderPower(power) {
    const box = ui.clear(document.getElementById("power"));
    if (!power || power.source === "none") { box.append(emptyNote(t("status.no_power_sensor"))); return; }
    const total = power.total_w;
    const text = total === null || total === undefined ? t("status.unavailable") : total.toFixed(2) + " W";
    box.append(ui.el("div", { class: "temp-row", "data-sensor": "power-total" }, [
      ui.el("div", { class: "temp-text" }, [
        ui.el("strong", { text: t("status.power_total") }),
        ui.el("span", { class: "temp-value", "data-power": "total", text }),
        ui.el("span", { class: "muted", text: ` · ${power.source}` + (power.input_v ? ` · ${power.input_v.toFixed(2)} V in` : "") }),
      ]),
      chart(power.history || [], null, `${t("status.power_total")} ${text}`, 0, 1, 1),
    ]));
    if (power.rails.length) box.append(table(power.rails.map((r) => [r.name, r.watts.toFixed(3) + " W"])));
  }

  function renderThrottle(flags, freq) {
    const box = ui.clear(document.getElementById("throttle"));
    const names = Object.keys(flags).filter((k) => !k.endsWith("_occurred"));
    if (!names.length) box.append(emptyNote(t("status.unavailable")));
    else {
      box.append(table(names.map((name) => {
        const now = flags[name], past = flags[name + "_occurred"];
        return [label(name),
          ui.el("span", { class: "flag " + (now ? "bad" : "good"), "data-flag": name, text: now ? t("status.now") : t("status.ok") }),
          past === undefined ? "" : ui.el("span", { class: past ? "flag warn" : "muted", text: past ? t("status.occurred") : "–" })];
      })));
    }
    if (freq !== null && freq !== undefined) box.append(table([[label("cpu_freq_ratio"), fmt("_ratio", freq)]]));
  }

  function renderMemory(data) {
    const box = ui.clear(document.getElementById("memory"));
    const rows = Object.entries(data.memory).map(([k, v]) => [label(k), fmt(k, v)]);
    for (const [k, v] of Object.entries(data.pressure)) rows.push([label(k), v.toFixed(2) + " %"]);
    const events = Object.entries(data.cgroup_events);
    if (events.length) rows.push([t("status.cgroup_events"), events.map(([k, v]) => `${k} ${v}`).join(" · ")]);
    box.append(rows.length ? table(rows) : emptyNote(t("status.unavailable")));
    for (const w of data.warnings_text || data.warnings) box.append(ui.el("p", { class: "warning", text: w }));
    for (const e of data.sensor_errors) box.append(ui.el("p", { class: "muted", text: e }));
  }

  function renderLatency(latency, degraded) {
    const box = ui.clear(document.getElementById("latency"));
    box.append(table([["p50", fmt("_ms", latency.p50_ms)], ["p90", fmt("_ms", latency.p90_ms)],
      ["p99", fmt("_ms", latency.p99_ms)], ["max", fmt("_ms", latency.max_ms)], ["n", String(latency.count)]]));
    const d = ui.clear(document.getElementById("degraded"));
    const rows = Object.entries(degraded);
    d.append(rows.length ? table(rows.map(([k, v]) => [k, String(v)])) : emptyNote(t("status.none")));
  }

  function renderPolicy(policy) {
    const box = ui.clear(document.getElementById("policy"));
    const tr = ui.clear(document.getElementById("transitions"));
    if (!policy.available) { box.append(emptyNote(t("status.unavailable"))); return; }
    const current = policy.current;
    if (current && typeof current === "object") {
      box.append(table(flatten(current, "", []).filter(([, v]) => v !== "" && v !== null)
        .map(([k, v]) => [label(k), ui.el("span", { "data-key": k, text: fmt(k, v) })])));
    }
    else if (current !== null && current !== undefined) box.append(ui.el("p", { class: "policy-state", text: String(current) }));
    const counts = Object.entries(policy.transition_counts || {});
    if (counts.length) box.append(table(counts.map(([k, v]) => [k, String(v)])));
    const recent = (policy.recent || []).slice().reverse();
    if (!recent.length) { tr.append(emptyNote(t("status.no_transitions"))); return; }
    tr.append(ui.el("ol", { class: "plain-list transitions" }, recent.map((item) => ui.el("li", {
      text: typeof item === "object" ? Object.entries(item).map(([k, v]) => `${k}: ${fmt(k, v)}`).join(", ") : String(item),
    }))));
  }

  function renderModel(model) {
    const box = ui.clear(document.getElementById("model"));
    const ev = ui.clear(document.getElementById("evaluation"));
    if (!model.loaded) { box.append(emptyNote(t("status.unavailable"))); return; }
    // The model card for people: name, version, scale, and evaluated figures with their data.
    const card = model.card || { name: model.name, version: model.version, scale: "", figures: [] };
    box.append(table([["name", card.name], ["version", card.version], ["scale", card.scale],
      ["sha256", ui.el("code", { class: "hash", text: model.sha256 })]]));
    ev.append(card.figures.length ? table(card.figures.map((f) => [f.label, `${f.value} (${f.data})`]))
      : emptyNote(t("status.no_evaluation")));
  }

  async function refresh() {
    let result;
    try { result = await ui.get("/status/api"); } catch (e) { result = null; }
    if (!result || !result.ok) return;
    const data = result.data;
    renderTemps(data.temperatures);
    renderPower(data.power);
    renderThrottle(data.throttle, data.cpu_freq_ratio);
    renderMemory(data);
    renderLatency(data.latency, data.degraded);
    renderPolicy(data.policy);
    renderModel(data.model);
    const stamp = document.getElementById("updated");
    stamp.textContent = new Date(data.time * 1000).toLocaleTimeString();
    document.body.dataset.loaded = "true";
  }

  refresh();
  setInterval(refresh, refreshMs);
})();
