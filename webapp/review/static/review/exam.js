// Exam review page: viewer, plane gallery, measurements with accept / edit / reject, biometry
// recomputed on the server for every geometry change, relabel, add measurement, sign-off,
// amendment, history. State comes from the server (json_script, then GET state after each change);
// the server is the single source of truth for every number shown.

const script = document.getElementById('exam-script');
const API = JSON.parse(document.getElementById('exam-api').textContent);
let S = JSON.parse(document.getElementById('exam-state').textContent);
const csrf = document.cookie.split('; ').find((c) => c.startsWith('csrftoken='))?.split('=')[1] || '';

const $ = (sel) => document.querySelector(sel);
const fmt = (v, d = 1) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));
// A centile rounded to 0.1 must not read "100.0th" or "0.0th": beyond 99.9 / below 0.1 say so.
const fmtCentile = (c) => (c === null || c === undefined ? '–' : c > 99.9 ? '>99.9' : c < 0.1 ? '<0.1' : Number(c).toFixed(1));
function h(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'class') n.className = v;
    else n.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : String(c));
  return n;
}

// ------------------------------------------------------------------ notices and requests
function notice(message, ok = false) {
  const el = $('#notice');
  el.textContent = message || '';
  el.className = ok ? 'ok' : '';
  if (ok && message) setTimeout(() => { if (el.textContent === message) el.textContent = ''; }, 2500);
}

async function call(method, url, body) {
  const resp = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf, Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await resp.json(); } catch { data = { error: `HTTP ${resp.status}` }; }
  if (!resp.ok) {
    const err = new Error(data.error || `HTTP ${resp.status}`);
    err.status = resp.status;
    err.field = data.field;
    throw err;
  }
  return data;
}

async function reload() {
  S = await call('GET', API.state);
  render();
  pushOverlays();
}

// ------------------------------------------------------------------ selection model
// Decidable items in page order: measurements, then planes and quality criteria.
let selected = 0;
const pending = new Map(); // overlay id -> {geometry, preview}
let current = { sop: S.instances[0]?.sopInstanceUID, frameIndex: 0 };
let viewer = null;

function items() {
  const list = [];
  for (const m of S.measurements) list.push({ type: m.finding_type, id: m.finding_id, row: m, kind: 'measurement' });
  for (const p of S.planes) if (p.finding_id) list.push({ type: 'plane', id: p.finding_id, row: p, kind: 'plane' });
  for (const q of S.quality) list.push({ type: 'quality', id: q.finding_id, row: q, kind: 'quality' });
  return list;
}

function select(index, { jump = true } = {}) {
  const all = items();
  if (!all.length) return;
  selected = Math.max(0, Math.min(all.length - 1, index));
  document.querySelectorAll('tr.selected, .plane-card.selected').forEach((n) => n.classList.remove('selected'));
  const it = all[selected];
  const node = document.querySelector(`[data-item="${it.type}:${it.id}"]`);
  node?.classList.add('selected');
  node?.scrollIntoView({ block: 'nearest' });
  if (jump) {
    const sop = it.row.sop;
    const frame = it.row.frame;
    if (sop && frame) goTo(sop, frame - 1);
  }
}

// ------------------------------------------------------------------ rendering
function decisionBadge(d, unsaved) {
  if (unsaved) return h('span', { class: 'dec dec-unsaved' }, 'edited, unsaved');
  if (!d) return h('span', { class: 'dec dec-pending' }, 'to review');
  return h('span', { class: `dec dec-${d.action}`, title: `${d.by} at ${d.at} (v${d.version})` }, `${d.action} · ${d.by}`);
}

function actionButtons(it, { canEdit = true } = {}) {
  const open = S.study.open_for_changes;
  const b = (label, key, fn, title) => h('button', { type: 'button', disabled: !open, title: `${title} (${key})`, 'data-action': label, onclick: (e) => { e.stopPropagation(); fn(); } }, label);
  return h('span', { class: 'row-actions' },
    b('accept', 'a', () => decide(it, 'accepted'), 'Accept the AI finding'),
    canEdit ? b('edit', 'e', () => edit(it), 'Save your correction') : null,
    b('reject', 'r', () => decide(it, 'rejected'), 'Reject the AI finding'));
}

function render() {
  $('#exam-status').textContent = S.study.status_display;
  $('#exam-status').className = `status status-${S.study.status}`;
  $('#planes-count').textContent = `${S.planes_found}/${S.planes_required}`;
  const all = items();

  // plane gallery
  const planes = $('#planes');
  planes.replaceChildren(...S.planes.map((p) => h('button', {
    type: 'button', class: 'plane-card', 'data-item': p.finding_id ? `plane:${p.finding_id}` : null, 'data-view': p.view_key,
    onclick: () => { if (p.sop && p.frame) { goTo(p.sop, p.frame - 1); if (p.finding_id) select(all.findIndex((x) => x.type === 'plane' && x.id === p.finding_id), { jump: false }); } },
  },
  p.thumbnail ? h('img', { src: p.thumbnail, alt: '' }) : h('span', { class: 'ph' }, 'missing'),
  h('span', {},
    h('span', { class: 'name' }, p.display), h('br'),
    h('small', { class: `plane-${p.flag}` }, p.needs_person && !p.finding_id ? 'mark by hand (no model yet)' : p.flag.replace('_', '-')),
    p.confidence !== null ? h('small', { class: 'muted' }, ` · ${fmt(p.confidence, 2)}`) : null,
    p.frame ? h('small', { class: 'muted' }, ` · frame ${p.frame}`) : null,
    p.decision ? h('br') : null, p.decision ? decisionBadge(p.decision) : null))));

  // thumbnails
  $('#thumbs').replaceChildren(...S.instances.map((inst, i) => h('button', {
    type: 'button', title: `Image ${i + 1}${inst.numberOfFrames > 1 ? ` (${inst.numberOfFrames} frames)` : ''} · calibration: ${inst.calibration}`,
    class: inst.sopInstanceUID === current.sop ? 'current' : '', 'data-sop': inst.sopInstanceUID,
    onclick: () => goTo(inst.sopInstanceUID, 0),
  }, h('img', { src: inst.thumbnailUrl, alt: `image ${i + 1}` }))));

  // measurements
  const tbody = $('#measurements tbody');
  tbody.replaceChildren(...S.measurements.map((m) => {
    const id = `${m.finding_type}:${m.finding_id}`;
    const p = pending.get(id);
    const it = all.find((x) => x.type === m.finding_type && x.id === m.finding_id);
    const phys = p ? p.preview : (m.decision && m.decision.action === 'edited' ? { value_mm: m.final_mm, value_px: m.final_px, px_only_reason: m.px_only_reason } : null);
    const aiCell = m.source === 'ai'
      ? h('td', { class: 'val-ai' }, m.ai_value_mm !== null ? `${fmt(m.ai_value_mm)} mm` : `${fmt(m.ai_value_px, 0)} px`,
        m.ai_value_mm === null ? h('span', { class: 'px-only' }, 'px only — no calibration covers these points') : null,
        m.confidence !== null ? h('small', { class: 'muted' }, h('br'), `conf ${fmt(m.confidence, 2)}`) : null,
        m.convention ? h('small', { class: 'muted' }, h('br'), m.convention) : null)
      : h('td', { class: 'muted' }, m.source);
    const physCell = h('td', { class: 'val-final', 'data-cell': 'physician' },
      phys ? (phys.value_mm !== null && phys.value_mm !== undefined ? `${fmt(phys.value_mm)} mm` : `${fmt(phys.value_px, 0)} px`) : (m.source !== 'ai' ? (m.final_mm !== null ? `${fmt(m.final_mm)} mm` : (m.final_px !== null ? `${fmt(m.final_px, 0)} px` : '–')) : '–'),
      phys && (phys.value_mm === null || phys.value_mm === undefined) && phys.px_only_reason ? h('span', { class: 'px-only' }, phys.px_only_reason) : null,
      m.source !== 'ai' && !phys && m.final_mm === null && m.px_only_reason ? h('span', { class: 'px-only' }, m.px_only_reason) : null);
    return h('tr', { 'data-item': id, 'data-kind': m.kind, onclick: () => select(all.indexOf(it)) },
      h('td', {}, h('strong', {}, m.kind), h('br'), h('small', { class: 'muted' }, `frame ${m.frame}`)),
      aiCell, physCell, h('td', {}, m.source !== 'ai' && !m.decision && !p ? h('span', { class: 'dec dec-accepted', title: m.source }, 'added') : decisionBadge(m.decision, !!p)), h('td', {}, actionButtons(it)));
  }));
  if (!S.measurements.length) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No measurements: the models found nothing to measure, or the analysis has not finished.')));

  // planes + quality decisions
  const qbody = $('#qualities tbody');
  const planeRows = S.planes.filter((p) => p.finding_id).map((p) => {
    const it = all.find((x) => x.type === 'plane' && x.id === p.finding_id);
    return h('tr', { 'data-item': `plane:${p.finding_id}`, onclick: () => select(all.indexOf(it)) },
      h('td', {}, p.display), h('td', {}, h('span', { class: `plane-${p.flag}` }, p.flag.replace('_', '-'))),
      h('td', {}, decisionBadge(p.decision), p.decision?.edited_label ? h('small', {}, ` → ${p.decision.edited_label}`) : null),
      h('td', {}, actionButtons(it, { canEdit: false })));
  });
  const qRows = S.quality.map((q) => {
    const it = all.find((x) => x.type === 'quality' && x.id === q.finding_id);
    return h('tr', { 'data-item': `quality:${q.finding_id}`, onclick: () => select(all.indexOf(it)), title: q.rationale },
      h('td', {}, q.criterion.replaceAll('_', ' '), h('br'), h('small', { class: 'muted' }, q.view)),
      h('td', {}, q.verdict.replace('_', ' ')),
      h('td', {}, decisionBadge(q.decision), q.decision?.edited_label ? h('small', {}, ` → ${q.decision.edited_label.replace('_', ' ')}`) : null),
      h('td', {}, actionButtons(it)));
  });
  qbody.replaceChildren(...planeRows, ...qRows);

  renderDating();
  renderBiometry(S.biometry, S.final_values_mm);

  // amendments
  const am = $('#amendments');
  if (am) am.replaceChildren(...S.amendments.map((a) => h('li', {}, `${a.at} · ${a.by}: “${a.reason}” (${a.changes.length} change${a.changes.length === 1 ? '' : 's'}${a.open ? ', open' : ''})`)));

  // history
  $('#history tbody').replaceChildren(...S.history.map((e) => h('tr', {}, h('td', {}, e.at), h('td', {}, e.user), h('td', {}, `${e.action}: ${e.detail}`), h('td', {}, e.ip))));
  select(selected, { jump: false });
}

// GA from dates: the stored value (what the centiles are placed at) and its form.
const datingText = (d) => (d ? `${d.ga_weeks_days}${d.lmp ? ` (LMP ${d.lmp})` : ''}` : '');
let datingPrefilled = null; // the version the form was last filled from (never overwrite typing)
function renderDating() {
  const d = S.gestational_dating;
  const box = $('#dating-current');
  box.className = d ? 'dating-current' : 'dating-current missing';
  box.replaceChildren(...(d
    ? [h('strong', {}, `GA from dates: ${datingText(d)}`), ` · ${d.basis_display}`,
      d.comment ? ` · “${d.comment}”` : null, h('br'),
      h('small', { class: 'muted' }, `set by ${d.by} at ${d.at} (v${d.version}) · centiles below are at this GA`)]
    : ['No GA from dates: size centiles need one (a GA from these same measurements would be circular).']
  ).filter((x) => x !== null)); // replaceChildren() would print a null child as "null"
  const form = $('#dating-form');
  if (!form || datingPrefilled === (d ? d.version : 0)) return;
  datingPrefilled = d ? d.version : 0;
  if (d) {
    $('#dating-basis').value = d.basis;
    $('#dating-lmp').value = d.lmp || '';
    $('#dating-ga').value = d.lmp ? '' : `${Math.floor(d.ga_days / 7)}+${d.ga_days % 7}`;
    $('#dating-comment').value = d.comment || '';
  }
  showLmpField();
}
function showLmpField() {
  // An LMP date only dates by the last menstrual period; other bases take the GA itself.
  const lmp = $('#dating-basis').value === 'lmp';
  $('#dating-lmp-field').hidden = !lmp;
  if (!lmp) $('#dating-lmp').value = '';
}
async function saveDating(e) {
  e.preventDefault();
  $('#dating-error').textContent = '';
  const ga = $('#dating-ga').value.trim();
  const lmp = $('#dating-lmp').value;
  try {
    const res = await call('POST', API.dating, {
      basis: $('#dating-basis').value,
      ga_weeks: ga || undefined,
      lmp: lmp || undefined,
      comment: $('#dating-comment').value,
      version: S.gestational_dating ? S.gestational_dating.version : 0,
    });
    notice(`GA from dates saved: ${res.ga_weeks_days} ✓`, true);
    await reload();
  } catch (err) {
    $('#dating-error').textContent = err.message;
    const input = { ga_weeks: '#dating-ga', lmp: '#dating-lmp', basis: '#dating-basis', comment: '#dating-comment' }[err.field];
    if (input) $(input).focus();
  }
}

function renderBiometry(b, values) {
  const box = $('#biometry');
  if (!b || b.error) {
    box.replaceChildren(h('p', { class: 'muted' }, b?.error || 'No biometry yet.'));
    return;
  }
  const dl = h('dl', {});
  // the calculator's inputs are named hc_mm, bpd_mm…; show them as HC, BPD…
  const shown = values || Object.fromEntries(Object.entries(b.inputs || {})
    .filter(([k]) => k.endsWith('_mm')).map(([k, v]) => [k.slice(0, -3).toUpperCase(), v]));
  for (const [k, v] of Object.entries(shown)) dl.append(h('dt', {}, k), h('dd', { 'data-final': k }, `${fmt(v)} mm`));
  for (const g of b.gestational_age || []) dl.append(h('dt', {}, g.formula.name), h('dd', { 'data-ga': g.formula.key }, `${g.ga_weeks_days} (${fmt(g.ga_weeks, 2)} w)${g.flags.length ? ' ⚠' : ''}`));
  for (const e of b.estimated_fetal_weight || []) dl.append(h('dt', {}, e.formula.name), h('dd', { 'data-efw': e.formula.key }, `${fmt(e.efw_g, 0)} g${e.flags.length ? ' ⚠' : ''}`));
  for (const c of b.centiles || []) dl.append(h('dt', {}, c.formula.name), h('dd', {}, `${fmtCentile(c.centile)}th centile (z ${fmt(c.z, 2)})`));
  box.replaceChildren(dl);
}

// ------------------------------------------------------------------ viewer
function overlaysFor() {
  const list = [];
  for (const m of S.measurements) {
    if (!m.overlay) continue;
    const p = pending.get(m.overlay.id);
    const o = { ...m.overlay, editable: S.study.open_for_changes };
    if (p) Object.assign(o, p.geometry);
    if (m.final_mm === null && m.final_px === null && !p) continue; // rejected: not drawn
    list.push(o);
  }
  for (const s of S.segmentations) list.push(s.overlay);
  if (adding) list.push(adding.overlay);
  return list;
}

function pushOverlays() {
  if (viewer) viewer.setOverlays(overlaysFor());
  else drawFallback();
}

async function goTo(sop, frameIndex) {
  current = { sop, frameIndex };
  document.querySelectorAll('#thumbs button').forEach((b) => b.classList.toggle('current', b.dataset.sop === sop));
  if (viewer) {
    try {
      const st = viewer.getState();
      if (st.sopInstanceUID !== sop) await viewer.showInstance(sop, frameIndex);
      else await viewer.seek(frameIndex);
    } catch (err) {
      notice(`Could not show the frame: ${err.message || err}`);
    }
  } else {
    drawFallback();
  }
}

const previewTimers = new Map();
function onGeometryChange(evt) {
  const [type, idText] = String(evt.id).split(':');
  if (type === 'new' && adding) {
    adding.overlay = { ...adding.overlay, ...evt.geometry };
    schedulePreview(evt.id, { finding_type: 'new', kind: adding.kind, sop: adding.sop, frame: adding.frame, geometry_px: geometryFor(adding.overlay.kind, evt.geometry) }, (res) => {
      adding.preview = res;
      viewer?.setOverlayText(evt.id, label(adding.kind, res));
      renderBiometry(res.biometry, null);
      $('#add-save').disabled = false;
    });
    return;
  }
  if (type !== 'measurement' && type !== 'physician_measurement') return;
  const m = S.measurements.find((x) => x.finding_type === type && String(x.finding_id) === idText);
  if (!m) return;
  const entry = pending.get(evt.id) || {};
  entry.geometry = evt.geometry;
  pending.set(evt.id, entry);
  schedulePreview(evt.id, { finding_type: type, finding_id: m.finding_id, geometry_px: geometryFor(m.overlay.kind, evt.geometry) }, (res) => {
    entry.preview = res;
    viewer?.setOverlayText(evt.id, label(m.kind, res));
    const row = document.querySelector(`[data-item="${evt.id}"]`);
    if (row) {
      row.querySelector('[data-cell="physician"]').textContent = res.value_mm !== null ? `${fmt(res.value_mm)} mm` : `${fmt(res.value_px, 0)} px`;
      if (res.value_mm === null) row.querySelector('[data-cell="physician"]').append(h('span', { class: 'px-only' }, res.px_only_reason));
      row.querySelector('td:nth-child(4)').replaceChildren(decisionBadge(null, true));
    }
    renderBiometry(res.biometry, null);
  });
}

function schedulePreview(id, body, done) {
  clearTimeout(previewTimers.get(id));
  previewTimers.set(id, setTimeout(async () => {
    try {
      // centiles at the exam's stored GA from dates (the server reads it)
      const res = await call('POST', API.preview, body);
      done(res);
    } catch (err) {
      notice(err.message);
    }
  }, 60));
}

function geometryFor(kind, g) {
  if (kind === 'ellipse') return { type: 'ellipse', cx: g.cx, cy: g.cy, a: g.a, b: g.b, angle: g.angle };
  return { type: 'line', points: [g.p1, g.p2] };
}
function label(kind, res) {
  return `${kind} ${res.value_mm !== null ? `${fmt(res.value_mm)} mm` : `${fmt(res.value_px, 0)} px (no calibration)`}`;
}

async function mountViewer() {
  const el = $('#viewer');
  if (!S.instances.length) {
    el.replaceChildren(h('p', { style: 'color:#ddd;padding:1rem' }, 'This exam has no images.'));
    return;
  }
  const focus = S.planes.find((p) => p.sop && p.frame) || null;
  if (focus) current = { sop: focus.sop, frameIndex: focus.frame - 1 };
  try {
    const mod = await import(script.dataset.viewer);
    viewer = mod.mountExamViewer(el, {
      dicomwebRoot: script.dataset.dicomwebRoot,
      studyUID: S.study.uid,
      instances: S.instances.map((i) => ({ sopInstanceUID: i.sopInstanceUID, seriesInstanceUID: i.seriesInstanceUID, numberOfFrames: i.numberOfFrames, frameTimeMs: i.frameTimeMs, thumbnailUrl: i.thumbnailUrl })),
      initialSopInstanceUID: current.sop,
      initialFrameIndex: current.frameIndex,
      overlays: overlaysFor(),
      thumbnails: false,
      onGeometryChange,
      onFrameChange: (e) => { current = { sop: e.sopInstanceUID, frameIndex: e.frameIndex }; },
      onReady: (info) => { window.examViewerReady = { ...info, sinceNavigationMs: performance.now() }; document.body.dataset.viewer = 'ready'; },
      onError: (e) => { document.body.dataset.viewer = 'error'; notice(`Viewer: ${e.message}. Showing rendered frames instead.`); viewer?.destroy?.(); viewer = null; fallback(); },
    });
    window.examViewer = viewer;
  } catch (err) {
    notice(`The viewer could not load (${err.message || err}); showing rendered frames without editing.`);
    fallback();
  }
}

// Fallback when the Cornerstone bundle is unavailable: the server's rendered PNG + SVG overlays.
function fallback() {
  const el = $('#viewer');
  el.replaceChildren(h('div', { id: 'viewer-fallback' }));
  document.body.dataset.viewer = 'fallback';
  drawFallback();
}
function drawFallback() {
  const box = $('#viewer-fallback');
  if (!box) return;
  const inst = S.instances.find((i) => i.sopInstanceUID === current.sop) || S.instances[0];
  const img = h('img', { src: inst.renderedUrlTemplate.replace('{n}', current.frameIndex + 1), alt: 'frame' });
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `-0.5 -0.5 ${inst.columns} ${inst.rows}`);
  for (const o of overlaysFor()) {
    if (o.sopInstanceUID !== inst.sopInstanceUID || o.frameIndex !== current.frameIndex) continue;
    let n;
    if (o.kind === 'ellipse') {
      n = document.createElementNS(svg.namespaceURI, 'ellipse');
      Object.entries({ cx: o.cx, cy: o.cy, rx: o.a, ry: o.b, transform: `rotate(${(o.angle * 180) / Math.PI} ${o.cx} ${o.cy})` }).forEach(([k, v]) => n.setAttribute(k, v));
    } else if (o.kind === 'length') {
      n = document.createElementNS(svg.namespaceURI, 'line');
      Object.entries({ x1: o.p1[0], y1: o.p1[1], x2: o.p2[0], y2: o.p2[1] }).forEach(([k, v]) => n.setAttribute(k, v));
    } else {
      n = document.createElementNS(svg.namespaceURI, 'polygon');
      n.setAttribute('points', o.points.map((p) => p.join(',')).join(' '));
    }
    n.setAttribute('fill', 'none');
    n.setAttribute('stroke', o.kind === 'contour' ? '#4fc3f7' : '#ffd54f');
    n.setAttribute('stroke-width', '2');
    svg.append(n);
  }
  box.replaceChildren(img, svg);
}

// ------------------------------------------------------------------ actions
async function decide(it, action, extra = {}) {
  if (!it) return;
  try {
    await call('POST', API.decide, { finding_type: it.type, finding_id: it.id, action, version: it.row.decision?.version ?? 0, ...extra });
    pending.delete(`${it.type}:${it.id}`);
    notice(`${action} ✓`, true);
    await reload();
  } catch (err) {
    notice(err.status === 409 ? `${err.message}` : `Not saved: ${err.message}${err.field ? ` (${err.field})` : ''}`);
  }
}

function edit(it) {
  if (!it) return;
  if (it.kind === 'measurement') {
    const p = pending.get(`${it.type}:${it.id}`);
    if (!p?.geometry) {
      notice('Drag a handle of this measurement first; then press e (or “edit”) to save your correction.');
      return;
    }
    decide(it, 'edited', { geometry_px: geometryFor(it.row.overlay.kind, p.geometry) });
  } else if (it.kind === 'quality') {
    decide(it, 'edited', { label: it.row.verdict === 'met' ? 'not_met' : 'met' });
  }
}

let adding = null;
function startAdd() {
  const kind = $('#add-kind').value;
  const inst = S.instances.find((i) => i.sopInstanceUID === current.sop) || S.instances[0];
  const cx = inst.columns / 2;
  const cy = inst.rows / 2;
  const r = Math.min(inst.columns, inst.rows) / 6;
  const shape = kind === 'HC' || kind === 'AC' ? { kind: 'ellipse', cx, cy, a: r, b: r * 0.8, angle: 0 } : { kind: 'length', p1: [cx - r, cy], p2: [cx + r, cy] };
  adding = { kind, sop: inst.sopInstanceUID, frame: current.frameIndex + 1, overlay: { id: 'new:1', label: kind, frameIndex: current.frameIndex, sopInstanceUID: inst.sopInstanceUID, editable: true, text: `${kind} (new)`, ...shape } };
  pushOverlays();
  onGeometryChange({ id: 'new:1', geometry: shape.kind === 'ellipse' ? { cx, cy, a: shape.a, b: shape.b, angle: 0 } : { p1: shape.p1, p2: shape.p2 } });
  notice('Drag the new measurement into place, then “Save measurement”.', true);
}
async function saveAdd(e) {
  e.preventDefault();
  if (!adding) return;
  $('#add-error').textContent = '';
  try {
    await call('POST', API.measure, { kind: adding.kind, sop: adding.sop, frame: adding.frame, geometry_px: geometryFor(adding.overlay.kind, adding.overlay) });
    adding = null;
    $('#add-save').disabled = true;
    notice('Measurement added ✓', true);
    await reload();
  } catch (err) {
    $('#add-error').textContent = err.message;
  }
}

async function relabel(e) {
  e.preventDefault();
  $('#relabel-error').textContent = '';
  const prior = S.relabels.find((r) => r.sop === current.sop && r.frame === current.frameIndex + 1);
  try {
    await call('POST', API.relabel, { sop: current.sop, frame: current.frameIndex + 1, new_label: $('#relabel-view').value, version: prior ? prior.version : 0 });
    notice('Frame relabelled ✓', true);
    await reload();
  } catch (err) {
    $('#relabel-error').textContent = err.message;
  }
}

let signHash = null;
async function openSign() {
  $('#sign-error').textContent = '';
  try {
    const res = await call('GET', API.summary);
    signHash = res.content_hash;
    const s = res.summary;
    const vals = Object.entries(s.final_values_mm).map(([k, v]) => `${k} ${fmt(v)} mm`).join(', ') || 'none in mm';
    const ga = (s.biometry.gestational_age || []).map((g) => `${g.formula.name}: ${g.ga_weeks_days}`).join('; ');
    const efw = (s.biometry.estimated_fetal_weight || []).map((g) => `${g.formula.name}: ${fmt(g.efw_g, 0)} g`).join('; ');
    const dating = s.gestational_dating;
    const centiles = (s.biometry.centiles || []).map((c) => `${c.measurement.split('_')[0].toUpperCase()} ${fmtCentile(c.centile)}th`).join(', ');
    $('#sign-summary').replaceChildren(
      h('p', {}, `${s.patient.name || '(no name)'} · ${s.patient.patient_id || 'no ID'} · accession ${s.accession_number || '–'}`),
      h('ul', {},
        h('li', {}, `Findings: ${s.counts.accepted} accepted, ${s.counts.edited} edited, ${s.counts.rejected} rejected, ${s.counts.undecided} not decided; ${s.counts.physician_measurements} added by physicians`),
        h('li', {}, `Final measurements: ${vals}`),
        ga ? h('li', {}, `GA: ${ga}`) : null,
        efw ? h('li', {}, `EFW: ${efw}`) : null,
        h('li', { 'data-sign': 'dating' }, dating ? `GA from dates: ${datingText(dating)} · ${dating.basis_display}, set by ${dating.by}` : 'GA from dates: not entered — no size centiles'),
        centiles ? h('li', { 'data-sign': 'centiles' }, `Centiles (INTERGROWTH-21st, at the GA from dates): ${centiles}`) : null,
        s.relabels.length ? h('li', {}, `${s.relabels.length} frame(s) relabelled`) : null,
        s.amendments.length ? h('li', {}, `Amendment: “${s.amendments[s.amendments.length - 1].reason}”`) : null),
      // replaceChildren() would print a null child as the text "null": filter it out
      ...[s.undecided_measurements ? h('p', { class: 'field-error' }, `${s.undecided_measurements} measurement(s) still undecided: decide each before signing.`) : null].filter(Boolean),
      h('p', { class: 'muted' }, `Content SHA-256 ${signHash.slice(0, 16)}…`));
    $('#sign-dialog').showModal();
    $('#sign-password').focus();
  } catch (err) {
    notice(err.message);
  }
}
async function submitSign(e) {
  e.preventDefault();
  $('#sign-error').textContent = '';
  try {
    await call('POST', API.sign, { password: $('#sign-password').value, content_hash: signHash });
    $('#sign-dialog').close();
    location.reload();
  } catch (err) {
    $('#sign-error').textContent = err.message;
  } finally {
    $('#sign-password').value = '';
  }
}
async function submitAmend(e) {
  e.preventDefault();
  $('#amend-error').textContent = '';
  try {
    await call('POST', API.amend, { reason: $('#amend-reason').value });
    location.reload();
  } catch (err) {
    $('#amend-error').textContent = err.message;
  }
}

// ------------------------------------------------------------------ keyboard
document.addEventListener('keydown', (e) => {
  if (e.target.closest('input, textarea, select, dialog') || e.ctrlKey || e.metaKey || e.altKey) return;
  const all = items();
  const it = all[selected];
  const keys = {
    j: () => select(selected + 1),
    k: () => select(selected - 1),
    a: () => decide(it, 'accepted'),
    r: () => decide(it, 'rejected'),
    e: () => edit(it),
    n: () => { location.href = API.next; },
  };
  if (keys[e.key]) {
    e.preventDefault();
    keys[e.key]();
  }
});

// ------------------------------------------------------------------ progress while analysing
async function pollProgress() {
  const p = S.progress;
  if (!p || !p.active) { $('#progress').textContent = ''; return; }
  $('#progress').textContent = `Analysing: ${p.stage} ${p.frames_done}/${p.frames_total}`;
  setTimeout(async () => {
    try {
      // the analysis app's light progress endpoint while running; the full state once done
      const r = API.progress ? (await call('GET', API.progress)).run : null;
      const active = r && ['queued', 'analysing', 'finalizing'].includes(r.status);
      if (r && active) {
        S.progress = { ...S.progress, stage: r.stage_display, frames_done: r.frames_done, frames_total: r.frames_total };
      } else {
        S = await call('GET', API.state);
        render();
        pushOverlays();
      }
    } catch { /* next poll */ }
    pollProgress();
  }, 2000);
}

$('#sign-open')?.addEventListener('click', openSign);
$('#sign-form')?.addEventListener('submit', submitSign);
$('#sign-cancel')?.addEventListener('click', () => $('#sign-dialog').close());
$('#amend-form')?.addEventListener('submit', submitAmend);
$('#relabel-form')?.addEventListener('submit', relabel);
$('#add-start')?.addEventListener('click', startAdd);
$('#add-measurement')?.addEventListener('submit', saveAdd);
$('#dating-form')?.addEventListener('submit', saveDating);
$('#dating-basis')?.addEventListener('change', showLmpField);
// One of the two: typing a GA clears the LMP and choosing an LMP clears the GA.
$('#dating-ga')?.addEventListener('input', () => { if ($('#dating-ga').value) $('#dating-lmp').value = ''; });
$('#dating-lmp')?.addEventListener('input', () => { if ($('#dating-lmp').value) $('#dating-ga').value = ''; });

// The reports app's panel (PDF, DICOM SR/SEG and their PACS write-back), once the exam is signed.
async function loadReports() {
  const box = $('#reports-panel');
  if (!box) return;
  try {
    const resp = await fetch(box.dataset.url, { credentials: 'same-origin' });
    box.innerHTML = resp.ok ? await resp.text() : `<p class="muted">Reports unavailable (HTTP ${resp.status}).</p>`;
  } catch (err) {
    box.textContent = `Reports unavailable (${err.message || err}).`;
  }
}

// For tests and debugging: the state the page currently shows.
window.reviewState = () => S;

render();
mountViewer();
pollProgress();
loadReports();
