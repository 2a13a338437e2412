// ganserve demo page: talks to POST /models, /generate and /walk of the server that serves it.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "ganserve.apiKey"; // sessionStorage: gone when the tab closes
const MAX_SEED = (1n << 63n) - 1n;
const PARALLEL = 6; // a browser opens about six connections per host; more would only queue there

let models = {};
let maxCount = 256;

// ---- API -------------------------------------------------------------------------------------------

// Seeds go up to 2^63-1, past what a JS number holds exactly: they travel as BigInt and are written into
// the JSON as plain digits.
function toJson(body) {
  return JSON.stringify(body, (_, v) => (typeof v === "bigint" ? `@big:${v}` : v)).replace(
    /"@big:(\d+)"/g,
    "$1",
  );
}

class ApiError extends Error {}

function errorMessage(status, text) {
  if (status === 401 || status === 403) {
    return `${status}: the server wants a valid API key; enter it in the "API key" field`;
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return `${status}: ${text.slice(0, 300) || "no answer"}`;
  }
  if (Array.isArray(body)) body = body[0] || {};
  if (Array.isArray(body.detail) && body.detail.length) {
    return body.detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return `${status}: ${body.error || body.detail || text.slice(0, 300)}`;
}

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, { method: "POST", headers, body: toJson(body) });
  } catch (err) {
    throw new ApiError(`cannot reach the server (${err.message})`);
  }
  const text = await response.text();
  if (!response.ok) throw new ApiError(errorMessage(response.status, text));
  return { body: JSON.parse(text), seed: response.headers.get("X-Seed") };
}

// Runs async jobs with at most `limit` in flight; resolves to their results in order.
async function pool(jobs, limit) {
  const results = new Array(jobs.length);
  let next = 0;
  async function worker() {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

// ---- inputs ----------------------------------------------------------------------------------------

function seedOf(input) {
  const text = input.value.trim();
  if (!/^\d{1,19}$/.test(text) || BigInt(text) > MAX_SEED) {
    throw new ApiError(`${input.labels[0].firstChild.textContent.trim()}: a whole number 0 … ${MAX_SEED}`);
  }
  return BigInt(text);
}

// Only the form is checked here: the server checks the limits and its message names them.
function intOf(input) {
  const n = Number(input.value.trim() || NaN);
  if (!Number.isSafeInteger(n)) throw new ApiError(`${input.labels[0].firstChild.textContent.trim()}: a whole number`);
  return n;
}

// "" (drawn from the seed) → undefined, otherwise the class index.
function labelOf(select) {
  return select.value === "" ? undefined : Number(select.value);
}

function fillLabels(select, model) {
  select.replaceChildren(new Option("drawn from the seed", ""));
  for (const [i, name] of model.class_names.entries()) select.add(new Option(name, String(i)));
}

// ---- output ----------------------------------------------------------------------------------------

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function picture(b64, alt, model) {
  const img = new Image();
  img.src = `data:image/png;base64,${b64}`;
  img.alt = alt;
  img.title = alt;
  // Small generators (16–32 px) are shown enlarged with hard pixel edges.
  const side = Math.max(64, Math.min(128, 2 * model.image_shape[1]));
  img.style.width = `${side}px`;
  return img;
}

function figure(img, caption) {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(img, cap);
  return fig;
}

// ---- actions ---------------------------------------------------------------------------------------

function current() {
  const model = models[$("model").value];
  if (!model) throw new ApiError("model: pick a model first");
  return model;
}

async function busy(button, work) {
  button.disabled = true;
  status("working…");
  try {
    const message = await work();
    status(message || "");
  } catch (err) {
    if (!(err instanceof ApiError)) console.error(err);
    status(err.message, true);
  } finally {
    button.disabled = false;
  }
}

async function generate() {
  const model = current();
  const seed = seedOf($("seed"));
  const count = intOf($("count"));
  const req = { model: model.name, seed, count, label: model.conditional ? labelOf($("label")) : undefined };
  const t0 = performance.now();
  const { body } = await api("/generate", req);
  const figs = body.images.map((b64, i) => {
    const name = body.label_names ? ` · ${body.label_names[i]}` : "";
    const alt = `seed ${seed} image ${body.indices[i]}${name ? `, label ${body.label_names[i]}` : ""}`;
    return figure(picture(b64, alt, model), `#${body.indices[i]}${name}`);
  });
  $("grid").replaceChildren(...figs);
  return `${figs.length} images of ${model.name}, seed ${seed}, in ${Math.round(performance.now() - t0)} ms`;
}

async function everyLabel() {
  const model = current();
  if (!model.conditional) throw new ApiError("model: only conditional models have labels");
  const first = seedOf($("labels-seed"));
  const rows = intOf($("labels-rows"));
  if (rows < 1 || rows > 8) throw new ApiError("Rows: 1 … 8");
  const seeds = Array.from({ length: rows }, (_, r) => first + BigInt(r));
  if (seeds[seeds.length - 1] > MAX_SEED) throw new ApiError(`First seed: the last row's seed passes ${MAX_SEED}`);
  const jobs = [];
  for (const seed of seeds) {
    for (let c = 0; c < model.num_classes; c++) {
      jobs.push(() => api("/generate", { model: model.name, seed, count: 1, label: c }));
    }
  }
  const t0 = performance.now();
  const answers = await pool(jobs, PARALLEL);
  const table = $("label-table");
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  for (const name of model.class_names) {
    const th = document.createElement("th");
    th.textContent = name;
    head.append(th);
  }
  const tbody = document.createElement("tbody");
  seeds.forEach((seed, r) => {
    const row = tbody.insertRow();
    const th = document.createElement("th");
    th.textContent = `seed ${seed}`;
    row.append(th);
    model.class_names.forEach((name, c) => {
      const b64 = answers[r * model.num_classes + c].body.images[0];
      row.insertCell().append(picture(b64, `seed ${seed}, label ${name}`, model));
    });
  });
  table.replaceChildren(table.tHead, tbody);
  const ms = Math.round(performance.now() - t0);
  return `${rows} seeds × ${model.num_classes} labels of ${model.name} (${jobs.length} requests) in ${ms} ms`;
}

let player = null;

function showFrame(frames, i) {
  $("walk-slider").value = String(i);
  $("walk-current").src = frames[i].img.src;
  $("walk-caption").textContent = frames[i].caption;
}

function stopPlayer() {
  clearInterval(player);
  player = null;
  $("walk-play").textContent = "Play";
}

async function walk() {
  const model = current();
  const req = {
    model: model.name,
    seed_a: seedOf($("walk-seed-a")),
    seed_b: seedOf($("walk-seed-b")),
    steps: intOf($("walk-steps")),
    index: intOf($("walk-index")),
  };
  if (model.conditional) {
    req.label_a = labelOf($("walk-label-a"));
    req.label_b = labelOf($("walk-label-b"));
  }
  const t0 = performance.now();
  const { body } = await api("/walk", req);
  stopPlayer();
  const frames = body.images.map((b64, i) => {
    const name = body.label_names ? ` · ${body.label_names[i]}` : "";
    const img = picture(b64, `walk frame ${i}, t = ${body.t[i].toFixed(3)}`, model);
    return { img, caption: `t = ${body.t[i].toFixed(2)}${name}` };
  });
  $("walk-frames").replaceChildren(...frames.map((f) => figure(f.img, f.caption)));
  $("walk-slider").max = String(frames.length - 1);
  $("walk-current").style.width = `${2 * parseInt(frames[0].img.style.width, 10)}px`;
  $("walk-slider").oninput = () => showFrame(frames, Number($("walk-slider").value));
  $("walk-play").onclick = () => {
    if (player) return stopPlayer();
    let i = Number($("walk-slider").value);
    let dir = 1;
    $("walk-play").textContent = "Pause";
    player = setInterval(() => {
      if (i + dir < 0 || i + dir >= frames.length) dir = -dir; // back and forth
      i += dir;
      showFrame(frames, i);
    }, 125);
  };
  showFrame(frames, 0);
  $("walk-player").hidden = false;
  return `walk of ${frames.length} frames in ${Math.round(performance.now() - t0)} ms`;
}

function selectModel() {
  const model = models[$("model").value];
  if (!model) return;
  const [c, h, w] = model.image_shape;
  const classes = model.conditional ? `, ${model.num_classes} classes` : "";
  $("model-info").textContent =
    `${model.recipe} on ${model.dataset}, ${w}×${h}×${c}${c === 4 ? " (RGBA)" : ""}, latent ${model.latent_dim}${classes}, ` +
    `${model.steps} training steps, running on ${model.provider}`;
  document.body.classList.toggle("conditional", model.conditional);
  showCard(model);
  // Larger images have a smaller count limit (the server's byte budget per request).
  $("count").max = String(model.max_count || maxCount);
  if (intOf($("count")) > (model.max_count || maxCount)) $("count").value = String(model.max_count || maxCount);
  for (const id of ["label", "walk-label-a", "walk-label-b"]) fillLabels($(id), model);
  for (const id of ["grid", "label-table", "walk-frames"]) $(id).replaceChildren();
  stopPlayer();
  $("walk-player").hidden = true;
}

// The model the page opens on: ?model=NAME, else the one with the largest images (colour and
// transparency show best), conditional first, then by name.
function defaultModel(list) {
  const asked = new URLSearchParams(window.location.search).get("model");
  if (asked && list.some((m) => m.name === asked)) return asked;
  const size = (m) => m.image_shape.reduce((a, b) => a * b, 1);
  const ranked = [...list].sort(
    (a, b) => size(b) - size(a) || Number(b.conditional) - Number(a.conditional) || a.name.localeCompare(b.name),
  );
  return ranked.length ? ranked[0].name : "";
}

async function loadModels() {
  const { body } = await api("/models", {});
  models = Object.fromEntries(body.models.map((m) => [m.name, m]));
  maxCount = body.max_count || maxCount;
  $("count").max = String(maxCount);
  const select = $("model");
  const previous = select.value;
  select.replaceChildren(...body.models.map((m) => new Option(`${m.name} (${m.recipe})`, m.name)));
  select.value = models[previous] ? previous : defaultModel(body.models);
  selectModel();
  return `${body.models.length} models`;
}

// The page's first paint: the model list, then samples of the default model, with no click.
async function firstPaint() {
  await loadModels();
  return generate();
}

// A few of the model card's measured figures beside the picture (none for a model without a card).
const CARD_FIGURES = [
  ["label accuracy", (q) => q.label_accuracy, (q) => q.evaluator_accuracy, "held-out real"],
  ["Fréchet ratio", (q) => q.frechet_ratio, () => 1, "real vs real"],
  ["recall", (q) => q.label_free?.samples?.recall, (q) => q.label_free?.real?.recall, "real"],
  ["coverage", (q) => q.label_free?.samples?.coverage, (q) => q.label_free?.real?.coverage, "real"],
  ["NDB/K", (q) => q.label_free?.samples?.ndb_k, (q) => q.label_free?.real?.ndb_k, "real"],
];

function showCard(model) {
  const list = $("model-card");
  const q = model.quality || {};
  const rows = [];
  for (const [name, value, real, realName] of CARD_FIGURES) {
    const v = value(q);
    if (typeof v !== "number") continue;
    const r = real(q);
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = typeof r === "number" ? `${v.toFixed(3)} (${realName} ${r.toFixed(3)})` : v.toFixed(3);
    rows.push(dt, dd);
  }
  list.replaceChildren(...rows);
  $("card-panel").hidden = rows.length === 0;
  if (rows.length) {
    $("card-source").textContent = `${q.samples} samples of seed ${q.seed}, measured by python -m training evaluate`;
  }
}

const BG_STORE = "ganserve.background"; // the page background behind transparent pixels

function setBackground(value) {
  for (const name of ["checker", "black", "white"]) document.body.classList.toggle(`bg-${name}`, name === value);
  sessionStorage.setItem(BG_STORE, value);
}

function init() {
  const bg = $("background");
  bg.value = sessionStorage.getItem(BG_STORE) || "checker";
  setBackground(bg.value);
  bg.addEventListener("change", () => setBackground(bg.value));
  const key = $("api-key");
  key.value = sessionStorage.getItem(KEY_STORE) || "";
  const saveKey = () => {
    sessionStorage.setItem(KEY_STORE, key.value.trim());
    busy($("model"), loadModels); // a new key may open the model list
  };
  key.addEventListener("change", saveKey);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveKey();
  });
  $("model").addEventListener("change", selectModel);
  $("seed-random").addEventListener("click", () => {
    $("seed").value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
  });
  const forms = { "samples-form": generate, "labels-form": everyLabel, "walk-form": walk };
  for (const [id, action] of Object.entries(forms)) {
    $(id).addEventListener("submit", (event) => {
      event.preventDefault();
      busy(event.submitter || $(id).querySelector("button[type=submit]"), action);
    });
  }
  busy($("model"), firstPaint);
}

document.addEventListener("DOMContentLoaded", init);
