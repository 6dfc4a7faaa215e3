// Shared helpers for the appliance pages. No libraries, no inline script (CSP script-src 'self').
"use strict";
(function () {
  const dataBlock = document.getElementById("edge-client");
  const client = dataBlock ? JSON.parse(dataBlock.textContent) : { strings: {}, settings: {} };
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function t(key) {
    return Object.prototype.hasOwnProperty.call(client.strings, key) ? client.strings[key] : key;
  }

  async function request(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrfMeta) headers["X-CSRF-Token"] = csrfMeta.content;
    const response = await fetch(url, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data };
  }

  // Build DOM nodes without innerHTML: patient text is always set as text, never parsed.
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of [].concat(children || [])) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function errorText(result) {
    const error = result && result.data && result.data.error;
    if (error && error.message) return error.message;
    return result && result.status ? t("error.generic") : t("error.network");
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  window.EdgeUI = { client, t, request, el, clear, errorText, formatDuration,
    get: (url) => request("GET", url), post: (url, body) => request("POST", url, body) };
})();
