// aidetect review page: verdicts through the standard V2 infer endpoint, the analyst's decisions
// through /review/api. The bearer token stays in this tab (sessionStorage) and is sent as a header.
"use strict";
const $ = (sel) => document.querySelector(sel);
const state = { info: null, outputs: [] };

function token() { return $("#token").value.trim(); }
function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) h["Authorization"] = "Bearer " + token();
  return h;
}
function say(text, isError) {
  const el = $("#status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}
async function api(path, opts) {
  opts = opts || {};
  const r = await fetch(path, Object.assign({}, opts, { headers: headers(opts.headers) }));
  if (r.status === 401 || r.status === 403) throw new Error("The server refused the token (" + r.status + "): enter a valid bearer token above.");
  if (r.status === 429) throw new Error("Rate limited: wait a moment and retry.");
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.arrayBuffer();
  if (!r.ok) throw new Error((body && body.error) || ("request failed: " + r.status));
  return body;
}
function b64(buf) {
  const bytes = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
function el(tag, attrs, children) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => (k === "text" ? (e.textContent = v) : e.setAttribute(k, v)));
  (children || []).forEach((c) => e.appendChild(c));
  return e;
}

async function connect() {
  sessionStorage.setItem("aidetect-token", token());
  sessionStorage.setItem("aidetect-reviewer", $("#reviewer").value);
  try {
    state.info = await api("/review/api/info");
    const meta = await api("/v2/models/" + encodeURIComponent(state.info.model));
    state.outputs = meta.outputs.map((o) => o.name);
    $("#model").textContent = "model: " + state.info.model + " version " + state.info.version;
    $("#explainer-note").textContent = state.info.explainer
      ? "Grad-CAM heatmaps come from the configured explainer."
      : "No explainer is configured (review_page.explainer_url): no Grad-CAM heatmap is shown.";
    $("#queue-note").textContent = "Uploads with a fake score in [" + state.info.uncertain.join(", ") +
      "] and no deciding provenance signal wait here for a decision.";
    say("Connected. Drop or paste images.");
    await loadQueue();
  } catch (e) { say(e.message, true); }
}

function inferBody(image) {
  const raw = new Uint8Array(4 + image.byteLength);
  new DataView(raw.buffer).setUint32(0, image.byteLength, true);
  raw.set(new Uint8Array(image), 4);
  const doc = {
    inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { binary_data_size: raw.length } }],
    outputs: state.outputs.map((name) => ({ name: name, parameters: { binary_data: false } })),
  };
  const header = new TextEncoder().encode(JSON.stringify(doc));
  return { body: new Blob([header, raw]), headerLength: header.length };
}

async function infer(image) {
  const req = inferBody(image);
  const out = await api("/v2/models/" + encodeURIComponent(state.info.model) + "/infer", {
    method: "POST", body: req.body,
    headers: { "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": String(req.headerLength) },
  });
  const o = {};
  out.outputs.forEach((t) => (o[t.name] = t.data));
  const probs = o.probabilities;
  const fake = 1 - probs[state.info.labels.indexOf(state.info.real_label)];
  return {
    label: o.label[0], fake_score: fake, model_version: out.model_version || state.info.version,
    // the page is installed for image models only, which always answer these three outputs
    verdict: o.verdict[0],
    reasons: JSON.parse(o.verdict_reasons[0]),
    provenance: JSON.parse(o.provenance[0]),
  };
}

function describe(result) {
  const signals = result.provenance.length
    ? result.provenance.map((s) => el("li", { text: s.kind + (s.claims_ai ? " claims AI" : "") + ": " + JSON.stringify(s.detail) }))
    : [el("li", { text: "no provenance signal found" })];
  return [
    el("div", {}, [el("span", { class: "verdict " + result.verdict, text: result.verdict }),
      el("span", { class: "score", text: "  fake score " + result.fake_score.toFixed(3) + " (label " + result.label + ", model version " + result.model_version + ")" })]),
    el("ul", { class: "reasons" }, result.reasons.map((r) => el("li", { text: r }))),
    el("ul", { class: "signals" }, signals),
  ];
}

async function check(file) {
  const image = await file.arrayBuffer();
  const thumb = el("img", { src: URL.createObjectURL(file), alt: file.name || "pasted image" });
  const box = el("div", { class: "result" }, [thumb, el("div", { text: "checking " + (file.name || "pasted image") + " ..." })]);
  $("#results").prepend(box);
  try {
    const result = await infer(image);
    const details = el("div", { class: "details" }, [el("div", { class: "name", text: file.name || "pasted image" }), ...describe(result)]);
    box.replaceChild(details, box.lastChild);
    if (state.info.explainer) heatmap(image, details);
    const q = await api("/review/api/submissions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image_b64: b64(image), result: result }),
    });
    say((file.name || "image") + ": " + result.verdict + (q.queued ? " (uncertain: queued for review)" : ""));
    if (q.queued) await loadQueue();
  } catch (e) {
    box.lastChild.textContent = "failed: " + e.message;
    say(e.message, true);
  }
}

async function heatmap(image, details) {
  const holder = el("div", { class: "heatmap", text: "Grad-CAM: loading ..." });
  details.appendChild(holder);
  try {
    const r = await api("/review/api/explain", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ image_b64: b64(image) }) });
    holder.textContent = "Grad-CAM (" + r.target + "):";
    holder.appendChild(el("img", { src: "data:image/png;base64," + r.heatmap_png_b64, alt: "Grad-CAM heatmap" }));
  } catch (e) { holder.textContent = "Grad-CAM unavailable: " + e.message; }
}

async function loadQueue() {
  const box = $("#queue");
  try {
    const data = await api("/review/api/queue");
    box.replaceChildren();
    if (!data.items.length) box.appendChild(el("p", { class: "note", text: "Nothing waiting for review." }));
    for (const item of data.items) box.appendChild(await queueItem(item));
  } catch (e) { say(e.message, true); }
}

async function queueItem(item) {
  const img = el("img", { alt: item.sha256 });
  api("/review/api/queue/" + item.sha256 + "/image").then((buf) => (img.src = URL.createObjectURL(new Blob([buf]))), () => {});
  const buttons = state.info.labels.map((label) => {
    const b = el("button", { "data-label": label, text: label });
    b.addEventListener("click", () => decide(item, label, row));
    return b;
  });
  const row = el("div", { class: "item", "data-sha256": item.sha256 }, [img, el("div", {}, [
    el("div", { class: "sha", text: item.sha256.slice(0, 12) + " queued " + item.queued.slice(0, 19) + "Z" }),
    ...describe(item.result), el("div", { class: "decide" }, [el("span", { text: "decision: " }), ...buttons]),
  ])]);
  return row;
}

async function decide(item, label, row) {
  try {
    const r = await api("/review/api/labels", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sha256: item.sha256, label: label, author: $("#reviewer").value.trim() }),
    });
    row.classList.add("done");
    row.querySelectorAll("button").forEach((b) => (b.disabled = true));
    say("Recorded " + r.recorded.label + " for " + item.sha256.slice(0, 12) + " by " + (r.recorded.author || "anonymous") + ".");
  } catch (e) { say(e.message, true); }
}

function files(list) { Array.from(list).filter((f) => f.type.startsWith("image/") || !f.type).forEach(check); }

window.addEventListener("DOMContentLoaded", () => {
  $("#token").value = sessionStorage.getItem("aidetect-token") || "";
  $("#reviewer").value = sessionStorage.getItem("aidetect-reviewer") || "";
  $("#connect").addEventListener("click", connect);
  $("#refresh").addEventListener("click", loadQueue);
  $("#file-input").addEventListener("change", (e) => files(e.target.files));
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); files(e.dataTransfer.files); });
  document.addEventListener("paste", (e) => files(Array.from(e.clipboardData.items).filter((i) => i.kind === "file").map((i) => i.getAsFile())));
  connect();
});
