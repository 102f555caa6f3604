// lookalike web page: search by upload or by a region of it, browse the catalogue, add and delete with an API key,
// review the catalogue's duplicate groups; mark results as similar / not similar to the query (saved as triplets
// when the query is a catalogue item and the API key is given) and search again "more like these".
// Plain JavaScript, no dependencies; everything is served by the lookalike service itself.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  blob: null,        // the query image's bytes (an upload, or a result's image fetched back)
  item: null,        // the catalogue item the query came from, if any
  box: null,         // {x, y, w, h} in pixels of the image, or null for the whole image
  writable: false,
  offset: 0,
  limit: 48,
  searches: 0,       // finished searches (the browser tests wait on it)
  reviews: 0,        // duplicate reports shown (likewise)
  calibrated: null,  // the duplicate calibration's summary, once loaded (null: none)
  checkSet: false,   // the upload's "check duplicates" box was ticked for a calibrated catalogue
  marks: new Map(),  // result id -> true (similar to the query) / false (not similar)
  marksOf: null,     // the reference item the marks are about (saved with the catalogue), or null (kept here)
  saved: null,       // the reference's stored counts {judgements, references, triplets}
  unsaved: new Set(), // ids marked while the marks could not be saved (no key, a region, an uploaded query)
  judged: 0,         // finished mark clicks (the browser tests wait on it)
};
const PATHS = { search: "/", browse: "/browse", review: "/review" };

// -- helpers ------------------------------------------------------------------------------------------------

function apiKey() { return $("api-key").value.trim(); }

async function api(url, options = {}) {
  const headers = new Headers(options.headers || {});
  if (options.write && apiKey()) headers.set("X-API-Key", apiKey());
  const response = await fetch(url, { ...options, headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`, body = null;
    try {
      body = await response.json();
      message = body.error.message || message;
    } catch (_) { /* not JSON */ }
    const err = new Error(message);
    err.status = response.status;
    err.body = body;  // e.g. a refused duplicate's "duplicates"
    throw err;
  }
  return response;
}

const MIN_REGION = 16;  // pixels: lookalike.images.MIN_REGION

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function tile(item, { score = null, label = null, onDelete = null, marks = false } = {}) {
  const div = document.createElement("div");
  div.className = "tile" + (score === null ? "" : " result");
  div.dataset.id = item.id;
  div.title = item.id + (Object.keys(item.metadata || {}).length ? "\n" + JSON.stringify(item.metadata) : "");
  const img = document.createElement("img");
  img.src = item.thumbnail_url;
  img.alt = item.id;
  img.loading = "lazy";
  div.append(img);
  if (score !== null) {
    const s = document.createElement("div");
    s.className = "score";
    s.textContent = score.toFixed(3);
    div.append(s);
  }
  if (label !== null) {
    const l = document.createElement("div");
    l.className = "label";
    l.textContent = label;
    div.append(l);
  }
  const name = document.createElement("div");
  name.className = "id";
  name.textContent = item.id;
  div.append(name);
  if (marks) {
    const bar = document.createElement("div");
    bar.className = "marks";
    for (const [value, text, title] of [[true, "✓ similar", "similar to the query"], [false, "✗ not", "not similar to the query"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = value ? "mark-similar" : "mark-dissimilar";
      b.textContent = text;
      b.title = title;
      b.addEventListener("click", (event) => { event.stopPropagation(); toggleMark(item.id, value); });
      bar.append(b);
    }
    div.append(bar);
  }
  if (onDelete) {
    const del = document.createElement("button");
    del.className = "delete";
    del.type = "button";
    del.title = "delete " + item.id;
    del.textContent = "×";
    del.addEventListener("click", (event) => { event.stopPropagation(); onDelete(item); });
    div.append(del);
  }
  div.addEventListener("click", () => searchFromItem(item));
  return div;
}

// -- views --------------------------------------------------------------------------------------------------

function viewOf(path) {
  return Object.keys(PATHS).find((view) => PATHS[view] === path) || "search";
}

function showView(view, push = true) {
  for (const name of Object.keys(PATHS)) $(`${name}-view`).hidden = view !== name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
  if (push) history.pushState({ view }, "", PATHS[view]);
  if (view === "browse") loadPage();
  if (view === "review") loadReview();
}

function refreshWriteControls() {
  const can = state.writable && apiKey() !== "";
  $("upload").hidden = !can;
  $("calibrate").hidden = !can;
  for (const b of document.querySelectorAll("#catalog .delete, #groups .drop-copies")) b.hidden = !can;
  showMarks();
}

// -- the query image and its box ----------------------------------------------------------------------------

function setQuery(blob, item) {
  if (!item || !state.item || state.item.id !== item.id) resetMarks(item);
  state.blob = blob;
  state.item = item;
  state.box = null;
  $("box").hidden = true;
  $("whole").disabled = true;
  const img = $("query-img");
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = URL.createObjectURL(blob);
  img.src = img.dataset.url;
  $("query").hidden = false;
  $("drop").hidden = true;
  $("query-caption").textContent = item ? `from the catalogue: ${item.id}` : (blob.name || "uploaded image");
}

function setupBox() {
  const stage = $("stage"), img = $("query-img"), box = $("box");
  let start = null;
  const point = (event) => {
    const r = img.getBoundingClientRect();
    return { x: Math.min(Math.max(event.clientX - r.left, 0), r.width),
             y: Math.min(Math.max(event.clientY - r.top, 0), r.height) };
  };
  stage.addEventListener("pointerdown", (event) => {
    if (!state.blob) return;
    event.preventDefault();
    start = point(event);
    stage.setPointerCapture(event.pointerId);
    Object.assign(box.style, { left: start.x + "px", top: start.y + "px", width: "0px", height: "0px" });
    box.hidden = false;
  });
  stage.addEventListener("pointermove", (event) => {
    if (!start) return;
    const p = point(event);
    Object.assign(box.style, { left: Math.min(p.x, start.x) + "px", top: Math.min(p.y, start.y) + "px",
                               width: Math.abs(p.x - start.x) + "px", height: Math.abs(p.y - start.y) + "px" });
  });
  const finish = (event) => {
    if (!start) return;
    const p = point(event), s = start;
    start = null;
    const r = img.getBoundingClientRect();
    const w = Math.abs(p.x - s.x), h = Math.abs(p.y - s.y);
    if (w < 4 || h < 4) {  // a click, not a drag
      box.hidden = true;
      return;
    }
    const sx = img.naturalWidth / r.width, sy = img.naturalHeight / r.height;
    const x = Math.floor(Math.min(p.x, s.x) * sx), y = Math.floor(Math.min(p.y, s.y) * sy);
    const bw = Math.min(Math.round(w * sx), img.naturalWidth - x), bh = Math.min(Math.round(h * sy), img.naturalHeight - y);
    const least = [Math.min(MIN_REGION, img.naturalWidth), Math.min(MIN_REGION, img.naturalHeight)];
    if (bw < least[0] || bh < least[1]) {  // the server refuses smaller regions
      box.hidden = true;
      setStatus($("status"), `draw a larger box: a region must be at least ${least[0]}×${least[1]} pixels of the image`, true);
      return;
    }
    state.box = { x, y, w: bw, h: bh };
    $("whole").disabled = false;
    search();
  };
  stage.addEventListener("pointerup", finish);
  stage.addEventListener("pointercancel", () => { start = null; box.hidden = true; });
}

// -- searching ----------------------------------------------------------------------------------------------

function renderResults(data) {
  const grid = $("results");
  grid.replaceChildren(...data.results.map((hit) => tile(hit, { score: hit.score, marks: true })));
  showMarks();
  const t = data.timings_ms, parts = Object.entries(t).map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
  const what = data.query.box ? `for the region ${data.query.box}`
    : data.query.like ? `more like ${data.query.like.join(", ")}`
      + (data.query.unlike && data.query.unlike.length ? `, less like ${data.query.unlike.join(", ")}` : "")
    : data.query.item ? `like ${data.query.item}` : "for the whole image";
  setStatus($("status"), `${data.results.length} results ${what} (${data.encoder}; ${parts.join(", ")})`);
  state.searches += 1;
  document.body.dataset.searches = String(state.searches);
}

function filterParam() {
  const text = $("where").value.trim();
  return text ? text : null;
}

async function search() {
  if (!state.blob) return;
  const form = new FormData();
  form.append("image", state.blob, state.blob.name || "query");
  form.append("k", $("k").value);
  if (state.box) form.append("box", `${state.box.x},${state.box.y},${state.box.w},${state.box.h}`);
  if (filterParam()) form.append("where", filterParam());
  setStatus($("status"), "searching…");
  try {
    renderResults(await (await api("/search", { method: "POST", body: form })).json());
  } catch (err) {
    setStatus($("status"), err.message, true);
  }
}

async function searchFromItem(item) {
  showView("search", location.pathname !== "/");
  setStatus($("status"), "searching…");
  try {
    const blob = await (await api(item.image_url)).blob();
    setQuery(blob, item);
    const params = new URLSearchParams({ k: $("k").value });
    if (filterParam()) params.set("where", filterParam());
    renderResults(await (await api(`${item.similar_url}?${params}`)).json());
    await loadMarks();
  } catch (err) {
    setStatus($("status"), err.message, true);
  }
}

function setupSearch() {
  const drop = $("drop");
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) { setQuery(file, null); search(); }
    $("file").value = "";
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    event.stopPropagation();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) { setQuery(file, null); search(); }
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {  // dropping anywhere on the search view works too
    event.preventDefault();
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file && !$("search-view").hidden) { setQuery(file, null); search(); }
  });
  $("whole").addEventListener("click", () => {
    state.box = null;
    $("box").hidden = true;
    $("whole").disabled = true;
    state.item ? searchFromItem(state.item) : search();
  });
  $("new-query").addEventListener("click", () => {
    $("query").hidden = true;
    $("drop").hidden = false;
    $("results").replaceChildren();
    setStatus($("status"), "");
    state.blob = null;
    state.item = null;
    resetMarks(null);
    showMarks();
  });
  for (const id of ["k", "where"]) {
    $(id).addEventListener("change", () => (state.item && !state.box ? searchFromItem(state.item) : search()));
  }
}

// -- marks: similar / not similar to the query ----------------------------------------------------------------

function saving() {  // marks about a catalogue item (searched whole) are saved with the catalogue when the page may write
  return state.marksOf !== null && !state.box && state.writable && apiKey() !== "";
}

function resetMarks(item) {
  state.marks = new Map();
  state.unsaved = new Set();
  state.marksOf = item ? item.id : null;
  state.saved = null;
}

async function loadMarks() {  // the stored judgements about the reference item, shown on its results
  if (state.marksOf === null) return;
  try {
    const params = new URLSearchParams({ reference: state.marksOf, limit: "1000" });
    const data = await (await api(`/triplets?${params}`)).json();
    state.marks = new Map(data.judgements.map((j) => [j.item, j.similar]));
    state.unsaved = new Set();
    state.saved = data.counts;
    showMarks();
  } catch (err) {
    setStatus($("judge-status"), err.message, true);
  }
}

function showMarks() {
  for (const t of document.querySelectorAll("#results .result")) {
    const mark = state.marks.get(t.dataset.id);
    t.classList.toggle("similar", mark === true);
    t.classList.toggle("dissimilar", mark === false);
  }
  const similar = [...state.marks.values()].filter((v) => v).length, other = state.marks.size - similar;
  const counts = `${similar} marked similar, ${other} not similar`;
  let where;
  if (saving()) {
    const t = state.saved ? state.saved.triplets : similar * other;
    where = `saved with the catalogue as judgements about ${state.marksOf}: ${t} triplet${t === 1 ? "" : "s"}`;
    const n = [...state.unsaved].filter((id) => state.marks.has(id)).length;
    if (n) where += `; ${n} mark${n === 1 ? "" : "s"} made without saving ${n === 1 ? "is" : "are"} not saved`;
  } else if (state.box) {
    where = "not saved: triplets are kept for a search with the whole item";
  } else if (state.marksOf !== null && state.writable) {
    where = "not saved: enter the API key to keep them as triplets";
  } else if (state.marksOf === null) {
    where = "not saved: triplets are kept for a search from a catalogue item";
  } else {
    where = "not saved: this service is read-only";
  }
  $("marks-info").textContent = `${counts} (${where}).`;
  $("judge").hidden = $("results").childElementCount === 0 && state.marks.size === 0;
  $("refine").disabled = similar === 0 && state.marksOf === null;
  $("clear-marks").disabled = state.marks.size === 0;
}

async function saveMarks(body) {
  const response = await api("/triplets", {
    method: "POST", write: true, headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ reference: state.marksOf, ...body }),
  });
  state.saved = (await response.json()).counts;
}

async function changeMarks(save, change) {  // save (if the page saves marks) and then change the local marks
  try {
    if (saving() && save) await saveMarks(save);
    change();
    setStatus($("judge-status"), "");
  } catch (err) {
    setStatus($("judge-status"), err.message, true);
  }
  showMarks();
  state.judged += 1;
  document.body.dataset.judged = String(state.judged);
}

function toggleMark(id, value) {
  const next = state.marks.get(id) === value ? undefined : value;
  const save = saving();
  return changeMarks(next === undefined ? { clear: [id] } : { [next ? "similar" : "dissimilar"]: [id] }, () => {
    if (next === undefined) state.marks.delete(id); else state.marks.set(id, next);
    if (save) state.unsaved.delete(id); else state.unsaved.add(id);
  });
}

function clearMarks() {
  return changeMarks(state.marks.size ? { clear: [...state.marks.keys()] } : null, () => {
    state.marks = new Map();
    state.unsaved = new Set();
  });
}

async function refine() {  // more like the query item and the similar marks, less like the others
  const like = [...state.marks].filter(([, v]) => v).map(([id]) => id);
  const unlike = [...state.marks].filter(([, v]) => !v).map(([id]) => id);
  if (state.marksOf !== null && !state.box) like.unshift(state.marksOf);
  const body = { like, unlike, k: Number($("k").value) };
  if (filterParam()) {
    try { body.where = JSON.parse(filterParam()); } catch (_) { body.where = filterParam(); }
  }
  setStatus($("status"), "searching…");
  try {
    const response = await api("/similar", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    renderResults(await response.json());
  } catch (err) {
    setStatus($("status"), err.message, true);
  }
}

function setupMarks() {
  $("refine").addEventListener("click", refine);
  $("clear-marks").addEventListener("click", clearMarks);
  $("api-key").addEventListener("input", showMarks);
}

// -- browsing and managing ----------------------------------------------------------------------------------

async function loadPage() {
  try {
    const data = await (await api(`/items?offset=${state.offset}&limit=${state.limit}`)).json();
    $("catalog").replaceChildren(...data.items.map((item) => tile(item, { onDelete: removeItem })));
    const last = Math.min(data.offset + data.items.length, data.total);
    $("page-info").textContent = data.total ? `${data.offset + 1}–${last} of ${data.total}` : "the catalogue is empty";
    $("prev").disabled = state.offset === 0;
    $("next").disabled = last >= data.total;
    refreshWriteControls();
    loadStats();
  } catch (err) {
    setStatus($("browse-status"), err.message, true);
  }
}

async function removeItem(item) {
  if (!confirm(`Delete ${item.id}?`)) return;
  try {
    await api(`/items/${encodeURIComponent(item.id)}`, { method: "DELETE", write: true });
    setStatus($("browse-status"), `deleted ${item.id}`);
    loadPage();
  } catch (err) {
    setStatus($("browse-status"), err.message, true);
  }
}

function setupBrowse() {
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); loadPage(); });
  $("next").addEventListener("click", () => { state.offset += state.limit; loadPage(); });
  $("upload").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData($("upload"));
    for (const name of ["id", "metadata", "refuse"]) if (!form.get(name)) form.delete(name);
    $("upload-result").hidden = true;
    try {
      const item = await (await api("/items", { method: "POST", body: form, write: true })).json();
      setStatus($("browse-status"), `added ${item.id}`);
      if (item.duplicates) showUploadDuplicates(item.duplicates, `Duplicates of ${item.id} in the catalogue:`);
      const check = $("upload-check").checked, refuse = $("upload-refuse").value;
      $("upload").reset();
      $("upload-check").checked = check;
      $("upload-refuse").value = refuse;
      loadPage();
    } catch (err) {
      setStatus($("browse-status"), err.message, true);
      if (err.body && err.body.duplicates) showUploadDuplicates(err.body.duplicates, "Not added: it copies");
    }
  });
  $("api-key").value = sessionStorage.getItem("lookalike-api-key") || "";
  $("api-key").addEventListener("input", () => {
    sessionStorage.setItem("lookalike-api-key", apiKey());
    refreshWriteControls();
  });
}

function matchLabel(match) {
  return `${match.verdict} · ${match.evidence.toFixed(1)}`;
}

function showUploadDuplicates(matches, caption) {
  const copies = matches.filter((m) => m.verdict !== "similar");
  $("upload-caption").textContent = copies.length ? caption
    : `No duplicates${matches.length ? " (only similar items)" : ""}.`;
  $("upload-duplicates").replaceChildren(...copies.map((m) => tile(m, { label: matchLabel(m) })));
  $("upload-result").hidden = false;
}

// -- duplicates ---------------------------------------------------------------------------------------------

function describeCalibration(cal) {
  if (!cal) return "Not calibrated yet: near-duplicate verdicts need a threshold fitted on this catalogue"
    + (state.writable ? " (enter the API key, then Calibrate)." : " (run 'lookalike dedup --calibrate').");
  const when = new Date(cal.created * 1000).toLocaleString();
  return `Calibrated on ${cal.sample} edited copies for precision ${cal.target_precision}: expected precision `
    + `${cal.precision.toFixed(3)}, recall ${cal.recall.toFixed(3)} (near-duplicate from evidence `
    + `${cal.threshold.toFixed(2)}; ${cal.encoder}; ${when}).`;
}

async function loadCalibration() {
  try {
    state.calibrated = await (await api("/duplicates/calibration")).json();
    $("calibration-info").textContent = describeCalibration(state.calibrated);
    if (state.calibrated && !state.checkSet) {  // check uploads for duplicates once the catalogue can
      $("upload-check").checked = true;
      state.checkSet = true;
    }
  } catch (err) {
    $("calibration-info").textContent = err.message;
  }
}

async function loadReview() {
  await loadCalibration();
  $("dedup-csv").hidden = !state.calibrated;
  if (!state.calibrated) {
    $("groups").replaceChildren();
    setStatus($("review-status"), "");
    return;
  }
  setStatus($("review-status"), "looking for duplicates…");
  try {
    const k = $("dedup-k").value;
    $("dedup-csv").href = `/duplicates?format=csv&k=${k}`;
    renderGroups(await (await api(`/duplicates?k=${k}`)).json());
  } catch (err) {
    setStatus($("review-status"), err.message, true);
  }
}

function renderGroups(report) {
  const groups = report.groups.map((group, n) => {
    const box = document.createElement("div");
    box.className = "group";
    box.dataset.keeper = group.keeper;
    const head = document.createElement("div");
    head.className = "group-head";
    const title = document.createElement("span");
    title.textContent = `Group ${n + 1}: ${group.size} items, keep ${group.keeper}`;
    const drop = document.createElement("button");
    drop.type = "button";
    drop.className = "drop-copies";
    const others = group.items.filter((item) => !item.keep);
    drop.textContent = `Delete ${others.length} non-keeper${others.length === 1 ? "" : "s"}`;
    drop.addEventListener("click", () => deleteCopies(group, others));
    head.append(title, drop);
    const grid = document.createElement("div");
    grid.className = "grid";
    grid.append(...group.items.map((item) => {
      const t = tile(item, { label: `${item.keep ? "keep" : "copy"} · ${item.width}×${item.height}` });
      if (item.keep) t.classList.add("keeper");
      return t;
    }));
    const pairs = document.createElement("ul");
    pairs.className = "pairs";
    pairs.append(...group.pairs.map((p) => {
      const li = document.createElement("li");
      const geo = p.geometric === null ? "" : `, geometric ${p.geometric.toFixed(3)}`;
      li.textContent = `${p.a} ↔ ${p.b}: ${p.verdict}, evidence ${p.evidence.toFixed(2)} `
        + `(cosine ${p.cosine.toFixed(3)}${geo})`;
      return li;
    }));
    box.append(head, grid, pairs);
    return box;
  });
  $("groups").replaceChildren(...groups);
  setStatus($("review-status"), `${report.groups.length} duplicate group${report.groups.length === 1 ? "" : "s"}, `
    + `${report.duplicates} copies to delete, among ${report.items} items (${report.pairs_checked} pairs checked in `
    + `${report.seconds.toFixed(2)} s)`);
  refreshWriteControls();
  state.reviews += 1;
  document.body.dataset.reviews = String(state.reviews);
}

async function deleteCopies(group, others) {
  if (!confirm(`Delete ${others.map((item) => item.id).join(", ")} and keep ${group.keeper}?`)) return;
  try {
    for (const item of others) {
      await api(`/items/${encodeURIComponent(item.id)}`, { method: "DELETE", write: true });
    }
    setStatus($("review-status"), `deleted ${others.length}, kept ${group.keeper}`);
    loadStats();
    loadReview();
  } catch (err) {
    setStatus($("review-status"), err.message, true);
  }
}

async function calibrate() {
  $("calibrate").disabled = true;
  setStatus($("review-status"), "calibrating: encoding edited copies of up to 200 items…");
  try {
    await api("/duplicates/calibrate", { method: "POST", write: true });
    await loadReview();
  } catch (err) {
    setStatus($("review-status"), err.message, true);
  } finally {
    $("calibrate").disabled = false;
  }
}

function setupReview() {
  $("dedup-run").addEventListener("click", loadReview);
  $("dedup-k").addEventListener("change", loadReview);
  $("calibrate").addEventListener("click", calibrate);
}

async function loadStats() {
  try {
    const health = await (await api("/health")).json();
    state.writable = health.writable;
    $("key-box").hidden = !health.writable;
    $("stats").textContent = `${health.items} items`;
    refreshWriteControls();
  } catch (err) {
    $("stats").textContent = "service unavailable";
  }
}

// -- start --------------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  setupBox();
  setupSearch();
  setupBrowse();
  setupReview();
  setupMarks();
  for (const a of document.querySelectorAll("nav a")) {
    a.addEventListener("click", (event) => { event.preventDefault(); showView(a.dataset.view); });
  }
  window.addEventListener("popstate", () => showView(viewOf(location.pathname), false));
  showView(viewOf(location.pathname), false);
  loadStats();
  if (viewOf(location.pathname) !== "review") loadCalibration();
});
