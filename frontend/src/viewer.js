// sonoreview exam viewer: Cornerstone3D stack viewport over the site's DICOMweb endpoints, with
// cine playback and editable measurement overlays. Public API: mountExamViewer (see README.md).

import {
  Enums as csEnums,
  RenderingEngine,
  cache,
  eventTarget,
  imageLoader,
  init as csInit,
  isCornerstoneInitialized,
  setUseCPURendering,
} from '@cornerstonejs/core';
import {
  Enums as toolsEnums,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  annotation as annotationApi,
  init as toolsInit,
} from '@cornerstonejs/tools';
import dicomImageLoader, { wadors } from '@cornerstonejs/dicom-image-loader';

import {
  ViewerLoadError,
  absoluteRoot,
  fetchDicomJson,
  frameImageId,
  frameTimeFromMetadata,
  indexBySop,
  instanceMetadataUrl,
  instancesFromMetadata,
  prepareForLoader,
  seriesMetadataUrl,
  studyMetadataUrl,
} from './dicomweb.js';
import { ellipseHandles, overlayGeometry, validateOverlay } from './geometry.js';
import { OVERLAY_COLORS, OVERLAY_EDIT_EVENT, OVERLAY_TOOLS, SonoOverlayToolBase, imageToWorld } from './overlayTools.js';

export const VERSION = '0.1.0';
export { OVERLAY_COLORS };

const { MouseBindings, KeyboardBindings } = toolsEnums;
const KINDS = ['ellipse', 'length', 'contour'];

let initPromise = null;
let mountCounter = 0;

/** One-time Cornerstone3D set-up shared by every viewer on the page. */
function initCornerstone({ cpuRendering, maxWebWorkers }) {
  if (!initPromise) {
    initPromise = (async () => {
      // CPU rendering: faster than software WebGL in headless Chromium and on GPU-less desktops
      // (stack-notes: 30 vs ~26 fps cine), and its canvas pixels are readable.
      if (cpuRendering) setUseCPURendering(true);
      if (!isCornerstoneInitialized()) await csInit();
      dicomImageLoader.init({ maxWebWorkers });
      toolsInit();
      for (const Tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, ...Object.values(OVERLAY_TOOLS)]) {
        addTool(Tool);
      }
    })();
  }
  return initPromise;
}

function describeError(reason) {
  if (!reason) return 'unknown error';
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return reason.message || String(reason);
  // dicom-image-loader rejects with {request, response, status} objects or {error} wrappers
  if (reason.status !== undefined) {
    const url = reason.request?.responseURL || reason.url || '';
    return `HTTP ${reason.status}${reason.statusText ? ` ${reason.statusText}` : ''}${url ? ` for ${url}` : ''}`;
  }
  if (reason.error) return describeError(reason.error);
  if (reason.message) return reason.message;
  try {
    return JSON.stringify(reason).slice(0, 300);
  } catch {
    return String(reason);
  }
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'style') Object.assign(node.style, v);
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  let pendingArgs = null;
  const run = () => {
    // Called directly when the wait is over or by the timer: either way a pending timer must not
    // fire again later with no arguments left ("s is not iterable" under load).
    clearTimeout(timer);
    timer = null;
    const args = pendingArgs;
    pendingArgs = null;
    if (!args) return;
    last = performance.now();
    fn(...args);
  };
  const throttled = (...args) => {
    pendingArgs = args;
    const wait = ms - (performance.now() - last);
    if (wait <= 0) run();
    else if (!timer) timer = setTimeout(run, wait);
  };
  throttled.cancel = () => {
    clearTimeout(timer);
    timer = null;
    pendingArgs = null;
  };
  return throttled;
}

/**
 * Mount the exam viewer into `element`. Returns a controller at once; `controller.ready` settles
 * when the first frame has been drawn (or loading failed: onError is called either way).
 *
 * @param {HTMLElement} element
 * @param {object} options
 * @param {string} options.dicomwebRoot  e.g. '/dicomweb' (same origin; credentials are sent)
 * @param {string} options.studyUID
 * @param {string} [options.seriesUID]   lists the series' instances when `instances` is omitted
 * @param {Array}  [options.instances]   [{sopInstanceUID, seriesInstanceUID, numberOfFrames, frameTimeMs}]
 * @param {string} [options.initialSopInstanceUID]  instance to show first (default: the first)
 * @param {number} [options.initialFrameIndex]      0-based frame to show first (default 0)
 * @param {Array}  [options.overlays]    overlay objects (schema in README.md), image px, 0-based frameIndex
 * @param {object} [options.overlayVisibility]  {ellipse: true, length: true, contour: true}
 * @param {Function} [options.onGeometryChange]  ({id, kind, label, frameIndex, sopInstanceUID, geometry, final})
 * @param {Function} [options.onReady]   ({firstRenderMs, sopInstanceUID, numberOfFrames, frameTimeMs})
 * @param {Function} [options.onError]  ({message, cause})
 * @param {Function} [options.onFrameChange]  ({sopInstanceUID, frameIndex, numberOfFrames})
 * @param {number} [options.loadTimeoutMs=20000]  a frame not drawn within this time is an error
 * @param {number} [options.geometryThrottleMs=100]  onGeometryChange rate while dragging
 * @param {boolean} [options.cpuRendering=true]
 * @param {boolean} [options.controls=true]  built-in control bar (play/pause/step/scrub/toggles)
 * @param {boolean} [options.thumbnails=true]  strip of instances (shown when there are ≥ 2); an
 *   instance's optional `thumbnailUrl` (e.g. the site's PNG thumbnail) is drawn in its button
 */
export function mountExamViewer(element, options = {}) {
  if (!(element instanceof HTMLElement)) throw new TypeError('mountExamViewer: element must be an HTMLElement');
  const opts = {
    loadTimeoutMs: 20000,
    geometryThrottleMs: 100,
    cpuRendering: true,
    controls: true,
    maxWebWorkers: 1,
    overlayVisibility: {},
    ...options,
  };
  const id = `sonoreview-${++mountCounter}`;
  const renderingEngineId = `${id}-engine`;
  const viewportId = `${id}-viewport`;
  const toolGroupId = `${id}-tools`;

  // ---------------------------------------------------------------- DOM
  element.replaceChildren();
  const viewportEl = el('div', {
    class: 'srv-viewport',
    tabindex: '0',
    'aria-label': 'Ultrasound image viewer: Space play/pause, ←/→ frame, +/− zoom, Shift+arrows pan, 0 reset',
    style: { position: 'relative', flex: '1 1 auto', minHeight: '200px', background: '#000', outline: 'none' },
  });
  const errorEl = el('div', {
    class: 'srv-error',
    role: 'alert',
    hidden: '',
    style: {
      position: 'absolute', left: '0', right: '0', top: '0', padding: '12px', zIndex: '10',
      background: 'rgba(120, 0, 0, 0.92)', color: '#fff', font: '14px/1.4 system-ui, sans-serif',
      whiteSpace: 'pre-wrap',
    },
  });
  const statusEl = el('div', {
    class: 'srv-status',
    'aria-live': 'polite',
    style: {
      position: 'absolute', left: '8px', bottom: '8px', zIndex: '5', color: '#ddd',
      font: '12px system-ui, sans-serif', pointerEvents: 'none', textShadow: '0 0 2px #000',
    },
    text: 'Loading…',
  });
  const playBtn = el('button', { type: 'button', class: 'srv-play', title: 'Play / pause (Space)', text: '▶' });
  const prevBtn = el('button', { type: 'button', class: 'srv-prev', title: 'Previous frame (←)', text: '◀︎' });
  const nextBtn = el('button', { type: 'button', class: 'srv-next', title: 'Next frame (→)', text: '▶︎|' });
  const scrub = el('input', {
    type: 'range', class: 'srv-scrub', min: '0', max: '0', step: '1', value: '0',
    'aria-label': 'Frame', style: { flex: '1 1 auto' },
  });
  const frameLabel = el('span', { class: 'srv-frame', style: { minWidth: '7em', textAlign: 'right' }, text: '–' });
  const toggles = {};
  const toggleBox = el('span', { class: 'srv-toggles', style: { display: 'inline-flex', gap: '8px' } });
  for (const kind of KINDS) {
    const cb = el('input', { type: 'checkbox', 'data-kind': kind });
    cb.checked = opts.overlayVisibility[kind] !== false;
    toggles[kind] = cb;
    const swatch = OVERLAY_COLORS[kind];
    toggleBox.append(
      el('label', { style: { display: 'inline-flex', alignItems: 'center', gap: '3px' } }, [
        cb,
        el('span', { style: { color: swatch }, text: kind === 'length' ? 'calipers' : kind === 'ellipse' ? 'ellipses' : 'contours' }),
      ]),
    );
  }
  const controlsEl = el(
    'div',
    {
      class: 'srv-controls',
      style: {
        display: opts.controls ? 'flex' : 'none', alignItems: 'center', gap: '6px', padding: '4px 6px',
        background: '#1b1b1b', color: '#eee', font: '13px system-ui, sans-serif',
      },
    },
    [prevBtn, playBtn, nextBtn, scrub, frameLabel, toggleBox],
  );
  const stage = el('div', { style: { position: 'relative', flex: '1 1 auto', display: 'flex', minHeight: '0' } }, [
    viewportEl, errorEl, statusEl,
  ]);
  // Optional strip of instances (the review page may draw its own from server PNGs instead).
  const thumbsEl = el('div', {
    class: 'srv-thumbs',
    role: 'listbox',
    'aria-label': 'Images of this exam',
    style: {
      display: 'none', gap: '4px', padding: '4px', overflowX: 'auto', background: '#111',
      font: '11px system-ui, sans-serif', color: '#ccc',
    },
  });
  const root = el('div', {
    class: 'srv-root',
    'data-state': 'loading',
    style: { display: 'flex', flexDirection: 'column', width: '100%', height: '100%', minHeight: '240px' },
  }, [stage, controlsEl, thumbsEl]);
  element.append(root);
  viewportEl.addEventListener('contextmenu', (e) => e.preventDefault());

  // ---------------------------------------------------------------- state
  const state = {
    destroyed: false,
    root: null,
    instances: [],
    bySop: new Map(),
    metadataBySop: new Map(),
    current: null, // instance entry
    frameIndex: 0,
    playing: false,
    cineTimer: null,
    cineFramesShown: 0,
    cineStartedAt: 0,
    overlays: [],
    draggingId: null,
    visible: { ellipse: toggles.ellipse.checked, length: toggles.length.checked, contour: toggles.contour.checked },
    loading: 0,
    error: null,
    firstRenderMs: null,
    renderingEngine: null,
    viewport: null,
    toolGroup: null,
  };
  const t0 = performance.now();
  let resolveReady;
  let rejectReady;
  const ready = new Promise((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => {}); // reported through onError; awaiting `ready` is optional

  function fail(message, cause) {
    if (state.destroyed) return;
    if (state.error) return; // the first failure is the informative one; the rest follow from it
    state.error = { message, cause };
    pause();
    root.dataset.state = 'error';
    errorEl.hidden = false;
    errorEl.textContent = `Could not show the image: ${message}`;
    statusEl.textContent = '';
    {
      try {
        opts.onError?.({ message, cause });
      } catch (err) {
        console.error('onError callback threw', err);
      }
      rejectReady(new ViewerLoadError(message, cause));
    }
  }

  // Cornerstone's loaders reject promises nobody awaits when a frame fails (stack-notes: failures
  // are otherwise silent). While this viewer is loading, such a rejection is this viewer's failure.
  const onUnhandledRejection = (evt) => {
    if (state.destroyed || state.loading === 0) return;
    fail(`image loading failed (${describeError(evt.reason)})`, evt.reason);
  };
  window.addEventListener('unhandledrejection', onUnhandledRejection);

  const onImageLoadError = (evt) => {
    const detail = evt.detail;
    const imageId = Array.isArray(detail) ? undefined : detail?.imageId;
    if (imageId && !imageIdBelongsHere(imageId)) return;
    const reason = Array.isArray(detail) ? detail[0]?.reason : detail?.error;
    fail(`image loading failed for ${imageIdToUrl(imageId) || 'a frame'} (${describeError(reason)})`, reason);
  };
  eventTarget.addEventListener(csEnums.Events.IMAGE_LOAD_ERROR, onImageLoadError);
  eventTarget.addEventListener(csEnums.Events.IMAGE_LOAD_FAILED, onImageLoadError);

  function imageIdBelongsHere(imageId) {
    return state.viewport?.getImageIds?.().includes(imageId) ?? false;
  }
  function imageIdToUrl(imageId) {
    return imageId ? imageId.replace(/^wadors:/, '') : '';
  }

  /** Race a promise against the load timeout, counting it as a pending load. */
  async function guarded(promise, what) {
    state.loading++;
    let timer;
    try {
      return await Promise.race([
        promise,
        new Promise((_, rej) => {
          timer = setTimeout(
            () => rej(new ViewerLoadError(`${what} did not finish within ${opts.loadTimeoutMs} ms`)),
            opts.loadTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      state.loading--;
    }
  }

  // ---------------------------------------------------------------- metadata
  /**
   * The list of instances. Given by the page (`instances`): nothing is fetched yet — each
   * instance's metadata is fetched when it is first shown (instance metadata endpoint), so the
   * first frame of a large exam does not wait for the whole series' metadata. Otherwise the
   * series' (or study's) metadata lists them, and is kept.
   */
  async function loadInstanceList() {
    state.root = absoluteRoot(opts.dicomwebRoot);
    if (!opts.studyUID) throw new ViewerLoadError('studyUID is required');
    if (Array.isArray(opts.instances) && opts.instances.length) {
      state.instances = opts.instances.map((x, i) => {
        if (!x?.sopInstanceUID) throw new ViewerLoadError(`instances[${i}] needs a sopInstanceUID`);
        const seriesInstanceUID = x.seriesInstanceUID || opts.seriesUID;
        if (!seriesInstanceUID) {
          throw new ViewerLoadError(`instances[${i}] needs a seriesInstanceUID (or give seriesUID)`);
        }
        return { ...x, seriesInstanceUID };
      });
    } else {
      const url = opts.seriesUID
        ? seriesMetadataUrl(state.root, opts.studyUID, opts.seriesUID)
        : studyMetadataUrl(state.root, opts.studyUID);
      const datasets = await fetchDicomJson(url, { timeoutMs: opts.loadTimeoutMs });
      state.instances = instancesFromMetadata(datasets).map((x) => ({ ...x, seriesInstanceUID: x.seriesInstanceUID || opts.seriesUID }));
      const dsBySop = indexBySop(datasets);
      for (const inst of state.instances) await adoptMetadata(inst, dsBySop.get(inst.sopInstanceUID));
    }
    if (!state.instances.length) {
      throw new ViewerLoadError(`no instances found in study ${opts.studyUID}${opts.seriesUID ? ` series ${opts.seriesUID}` : ''}`);
    }
    state.bySop = new Map(state.instances.map((x) => [x.sopInstanceUID, x]));
  }

  /** Register one instance's DICOM JSON; the file's Number of Frames wins over the page's. */
  async function adoptMetadata(inst, ds) {
    const fromFile = instancesFromMetadata([ds])[0];
    if (!fromFile || fromFile.sopInstanceUID !== inst.sopInstanceUID) {
      throw new ViewerLoadError(`the DICOMweb metadata does not describe instance ${inst.sopInstanceUID}`);
    }
    if (inst.numberOfFrames != null && Number(inst.numberOfFrames) !== fromFile.numberOfFrames) {
      console.warn(`instance ${inst.sopInstanceUID}: page said ${inst.numberOfFrames} frames, the file has ${fromFile.numberOfFrames}`);
    }
    inst.numberOfFrames = fromFile.numberOfFrames;
    if (Number(inst.frameTimeMs) > 0) {
      inst.frameTimeMs = Number(inst.frameTimeMs);
      inst.frameTimeSource ||= 'page';
    } else {
      const ft = frameTimeFromMetadata(ds);
      inst.frameTimeMs = ft.frameTimeMs;
      inst.frameTimeSource = ft.source;
    }
    state.metadataBySop.set(inst.sopInstanceUID, await prepareForLoader(ds));
  }

  async function ensureMetadata(inst) {
    if (state.metadataBySop.has(inst.sopInstanceUID)) return;
    const url = instanceMetadataUrl(state.root, opts.studyUID, inst.seriesInstanceUID, inst.sopInstanceUID);
    const [ds] = await fetchDicomJson(url, { timeoutMs: opts.loadTimeoutMs });
    await adoptMetadata(inst, ds);
  }

  function imageIdsFor(inst) {
    const ids = [];
    for (let n = 1; n <= inst.numberOfFrames; n++) {
      ids.push(frameImageId(state.root, opts.studyUID, inst.seriesInstanceUID, inst.sopInstanceUID, n));
    }
    // frame 1's metadata is enough for a multi-frame instance (the loader maps frames to it),
    // but registering every frame id is cheap and avoids relying on that mapping
    const ds = state.metadataBySop.get(inst.sopInstanceUID);
    for (const imageId of ids) wadors.metaDataManager.add(imageId, ds);
    return ids;
  }

  // ---------------------------------------------------------------- viewport
  function setupViewport() {
    state.renderingEngine = new RenderingEngine(renderingEngineId);
    state.renderingEngine.enableElement({
      viewportId,
      type: csEnums.ViewportType.STACK,
      element: viewportEl,
      defaultOptions: { background: [0, 0, 0] },
    });
    state.viewport = state.renderingEngine.getViewport(viewportId);
    // Cornerstone sets tabIndex -1 on the element: keep the viewer reachable with Tab, and
    // take focus on a click (its mouse handling prevents the default focus) so keys work at once
    viewportEl.tabIndex = 0;
    viewportEl.addEventListener('pointerdown', () => viewportEl.focus({ preventScroll: true }));

    const tg = ToolGroupManager.createToolGroup(toolGroupId);
    state.toolGroup = tg;
    for (const Tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, ...Object.values(OVERLAY_TOOLS)]) {
      tg.addTool(Tool.toolName);
    }
    tg.addViewport(viewportId, renderingEngineId);
    // Left drag: window/level (a drag that starts on an overlay handle edits the overlay instead);
    // right drag or Ctrl+left: zoom; middle drag or Shift+left: pan; wheel: frames.
    tg.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    tg.setToolActive(ZoomTool.toolName, {
      bindings: [
        { mouseButton: MouseBindings.Secondary },
        { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Ctrl },
      ],
    });
    tg.setToolActive(PanTool.toolName, {
      bindings: [
        { mouseButton: MouseBindings.Auxiliary },
        { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift },
      ],
    });
    tg.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    // Passive: existing annotations can be dragged, none are created by clicking.
    tg.setToolPassive(OVERLAY_TOOLS.ellipse.toolName);
    tg.setToolPassive(OVERLAY_TOOLS.length.toolName);
    tg.setToolEnabled(OVERLAY_TOOLS.contour.toolName);

    viewportEl.addEventListener(csEnums.Events.STACK_NEW_IMAGE, onNewImage);
    viewportEl.addEventListener(OVERLAY_EDIT_EVENT, onOverlayEdit);
    state.resizeObserver = new ResizeObserver(() => {
      // keepCamera: a layout change must not throw away the reviewer's zoom and pan
      if (state.renderingEngine && !state.destroyed) state.renderingEngine.resize(true, true);
    });
    state.resizeObserver.observe(viewportEl);
  }

  function onNewImage(evt) {
    const idx = evt.detail?.imageIdIndex;
    if (typeof idx !== 'number') return;
    state.frameIndex = idx;
    updateFrameUi();
    if (state.playing) state.cineFramesShown++;
    try {
      opts.onFrameChange?.({
        sopInstanceUID: state.current?.sopInstanceUID,
        frameIndex: idx,
        numberOfFrames: state.current?.numberOfFrames,
      });
    } catch (err) {
      console.error('onFrameChange callback threw', err);
    }
  }

  function renderThumbnails() {
    thumbsEl.replaceChildren();
    if (opts.thumbnails === false || state.instances.length < 2) return;
    thumbsEl.style.display = 'flex';
    state.instances.forEach((inst, i) => {
      const label = `${i + 1}${inst.numberOfFrames > 1 ? ` · ${inst.numberOfFrames} fr` : ''}`;
      const btn = el('button', {
        type: 'button',
        role: 'option',
        class: 'srv-thumb',
        'data-sop': inst.sopInstanceUID,
        title: `Image ${i + 1}${inst.numberOfFrames > 1 ? ` (cine, ${inst.numberOfFrames} frames)` : ''}`,
        style: { background: '#222', color: '#ddd', border: '2px solid #333', padding: '2px', cursor: 'pointer' },
      });
      if (inst.thumbnailUrl) {
        btn.append(el('img', { src: inst.thumbnailUrl, alt: '', loading: 'lazy', style: { display: 'block', height: '56px' } }));
      }
      btn.append(el('div', { text: label }));
      btn.addEventListener('click', () => showInstance(inst.sopInstanceUID, 0).catch((err) => fail(describeError(err), err)));
      thumbsEl.append(btn);
    });
  }

  function markCurrentThumbnail() {
    for (const btn of thumbsEl.querySelectorAll('.srv-thumb')) {
      const on = btn.dataset.sop === state.current?.sopInstanceUID;
      btn.style.borderColor = on ? '#4fc3f7' : '#333';
      btn.setAttribute('aria-selected', String(on));
    }
  }

  function updateFrameUi() {
    const n = state.current?.numberOfFrames ?? 0;
    scrub.max = String(Math.max(0, n - 1));
    scrub.value = String(state.frameIndex);
    scrub.disabled = n <= 1;
    playBtn.disabled = n <= 1;
    prevBtn.disabled = n <= 1;
    nextBtn.disabled = n <= 1;
    frameLabel.textContent = n ? `${state.frameIndex + 1} / ${n}` : '–';
    root.dataset.frameIndex = String(state.frameIndex);
    playBtn.textContent = state.playing ? '❚❚' : '▶';
    if (state.current && !state.error) {
      const fps = (1000 / state.current.frameTimeMs).toFixed(1);
      statusEl.textContent = n > 1 ? `${fps} fps${state.playing ? ' ▶' : ''}` : '';
    }
  }

  // ---------------------------------------------------------------- overlays
  const annotationUIDs = new Set();

  function clearAnnotations() {
    for (const uid of annotationUIDs) annotationApi.state.removeAnnotation(uid);
    annotationUIDs.clear();
  }

  function overlayInstance(o) {
    return o.sopInstanceUID || state.instances[0]?.sopInstanceUID;
  }

  /** (Re)create Cornerstone annotations for the shown instance's visible overlays. */
  function syncAnnotations() {
    if (!state.viewport || !state.current) return;
    // an overlay being dragged keeps its annotation; rebuilding mid-drag would drop the drag
    clearAnnotations();
    const imageIds = state.viewport.getImageIds();
    const FrameOfReferenceUID = state.viewport.getFrameOfReferenceUID?.();
    for (const o of state.overlays) {
      if (!state.visible[o.kind]) continue;
      if (overlayInstance(o) !== state.current.sopInstanceUID) continue;
      const referencedImageId = imageIds[o.frameIndex];
      if (!referencedImageId) {
        console.warn(`overlay ${o.id}: frameIndex ${o.frameIndex} is outside the instance (${imageIds.length} frames)`);
        continue;
      }
      const Tool = OVERLAY_TOOLS[o.kind];
      const annotation = {
        annotationUID: `${id}-${o.kind}-${o.id}`,
        highlighted: false,
        invalidated: false,
        isLocked: !o.editable,
        isVisible: true,
        metadata: {
          toolName: Tool.toolName,
          // stack-notes: without the frame's own image id, annotations follow the cine
          referencedImageId,
          FrameOfReferenceUID,
        },
        data: { overlay: o, handles: { points: [], activeHandleIndex: null }, cachedStats: {} },
      };
      SonoOverlayToolBase.syncHandles(annotation, state.viewport);
      annotationApi.state.addAnnotation(annotation, viewportEl);
      annotationUIDs.add(annotation.annotationUID);
    }
    state.viewport.render();
  }

  function reportGeometry(o, final) {
    try {
      opts.onGeometryChange?.({
        id: o.id,
        kind: o.kind,
        label: o.label,
        frameIndex: o.frameIndex,
        sopInstanceUID: overlayInstance(o),
        geometry: overlayGeometry(o),
        final,
      });
    } catch (err) {
      console.error('onGeometryChange callback threw', err);
    }
  }
  const reportWhileDragging = throttle((o) => reportGeometry(o, false), opts.geometryThrottleMs);

  function onOverlayEdit(evt) {
    const { overlay, final } = evt.detail;
    state.draggingId = final ? null : overlay.id;
    if (final) {
      reportWhileDragging.cancel();
      reportGeometry(overlay, true);
    } else {
      reportWhileDragging(overlay);
    }
  }

  // ---------------------------------------------------------------- frames & cine
  async function showInstance(sopInstanceUID, frameIndex = 0) {
    await ready.catch(() => {});
    return showInstanceNow(sopInstanceUID, frameIndex);
  }

  async function showInstanceNow(sopInstanceUID, frameIndex = 0) {
    if (state.destroyed) return;
    const inst = state.bySop.get(sopInstanceUID);
    if (!inst) throw new Error(`unknown instance ${sopInstanceUID}`);
    pause();
    await guarded(ensureMetadata(inst), `loading the DICOM metadata of instance ${sopInstanceUID}`);
    if (state.destroyed) return;
    const idx = clampFrame(frameIndex, inst);
    const imageIds = imageIdsFor(inst);
    state.current = inst;
    state.frameIndex = idx;
    updateFrameUi();
    markCurrentThumbnail();
    await guarded(state.viewport.setStack(imageIds, idx), `loading frame ${idx + 1} of instance ${sopInstanceUID}`);
    syncAnnotations();
    updateFrameUi();
    // fetch the other frames in the background so cine plays from cache
    if (inst.numberOfFrames > 1) {
      const rest = imageIds.filter((_, i) => i !== idx);
      Promise.allSettled(imageLoader.loadAndCacheImages(rest)).then((results) => {
        const bad = results.find((r) => r.status === 'rejected');
        if (bad && state.current === inst) fail(`could not load all frames of instance ${sopInstanceUID} (${describeError(bad.reason)})`, bad.reason);
      });
    }
  }

  function clampFrame(i, inst = state.current) {
    const n = inst?.numberOfFrames ?? 1;
    const k = Math.round(Number(i) || 0);
    return Math.max(0, Math.min(n - 1, k));
  }

  async function seek(frameIndex) {
    await ready.catch(() => {});
    if (!state.current || state.destroyed) return;
    const idx = clampFrame(frameIndex);
    await guarded(state.viewport.setImageIdIndex(idx), `loading frame ${idx + 1}`);
  }

  async function step(delta = 1) {
    await ready.catch(() => {});
    if (!state.current) return;
    pause();
    const n = state.current.numberOfFrames;
    const idx = (((state.viewport.getCurrentImageIdIndex() + Math.sign(delta || 1)) % n) + n) % n;
    await seek(idx);
  }

  function play() {
    if (!state.current || state.current.numberOfFrames <= 1 || state.playing || state.error) return;
    state.playing = true;
    state.cineFramesShown = 0;
    state.cineStartedAt = performance.now();
    const startFrame = state.viewport.getCurrentImageIdIndex();
    const ft = state.current.frameTimeMs;
    const n = state.current.numberOfFrames;
    // Frame shown = f(elapsed time), so playback runs at the file's Frame Time; frames that
    // cannot be drawn in time are skipped rather than slowing the loop down.
    const tick = async () => {
      if (!state.playing || state.destroyed) return;
      const elapsed = performance.now() - state.cineStartedAt;
      const due = (startFrame + Math.floor(elapsed / ft) + 1) % n;
      if (due !== state.viewport.getCurrentImageIdIndex()) {
        try {
          await state.viewport.setImageIdIndex(due);
        } catch (err) {
          fail(`cine playback stopped: ${describeError(err)}`, err);
          return;
        }
      }
      if (!state.playing) return;
      const nextDue = (Math.floor((performance.now() - state.cineStartedAt) / ft) + 1) * ft;
      state.cineTimer = setTimeout(tick, Math.max(0, nextDue - (performance.now() - state.cineStartedAt)));
    };
    state.cineTimer = setTimeout(tick, ft);
    updateFrameUi();
  }

  function pause() {
    state.playing = false;
    clearTimeout(state.cineTimer);
    state.cineTimer = null;
    updateFrameUi();
  }

  // ---------------------------------------------------------------- view (zoom/pan/reset)
  function zoomBy(factor) {
    const vp = state.viewport;
    if (!vp) return;
    vp.setZoom(vp.getZoom() * factor);
    vp.render();
  }

  function panBy(dxCanvas, dyCanvas) {
    const vp = state.viewport;
    if (!vp) return;
    const a = vp.canvasToWorld([0, 0]);
    const b = vp.canvasToWorld([dxCanvas, dyCanvas]);
    const d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    const cam = vp.getCamera();
    vp.setCamera({
      focalPoint: cam.focalPoint.map((v, i) => v + d[i]),
      position: cam.position.map((v, i) => v + d[i]),
    });
    vp.render();
  }

  function resetView() {
    const vp = state.viewport;
    if (!vp) return;
    vp.resetCamera();
    vp.resetProperties();
    vp.render();
  }

  // ---------------------------------------------------------------- UI wiring
  playBtn.addEventListener('click', () => (state.playing ? pause() : play()));
  prevBtn.addEventListener('click', () => step(-1));
  nextBtn.addEventListener('click', () => step(1));
  scrub.addEventListener('input', () => {
    const target = Number(scrub.value); // read before pause() redraws the control
    pause();
    seek(target);
  });
  for (const kind of KINDS) {
    toggles[kind].addEventListener('change', () => setOverlayVisible(kind, toggles[kind].checked));
  }
  const onKeyDown = (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type !== 'range' && e.target.type !== 'checkbox') return;
    const PAN = 40;
    let handled = true;
    if (e.key === ' ' || e.key === 'k') state.playing ? pause() : play();
    else if (e.shiftKey && e.key === 'ArrowLeft') panBy(-PAN, 0);
    else if (e.shiftKey && e.key === 'ArrowRight') panBy(PAN, 0);
    else if (e.shiftKey && e.key === 'ArrowUp') panBy(0, -PAN);
    else if (e.shiftKey && e.key === 'ArrowDown') panBy(0, PAN);
    else if (e.key === 'ArrowLeft' || e.key === ',') step(-1);
    else if (e.key === 'ArrowRight' || e.key === '.') step(1);
    else if (e.key === 'Home') seek(0);
    else if (e.key === 'End') seek((state.current?.numberOfFrames ?? 1) - 1);
    else if (e.key === '+' || e.key === '=') zoomBy(1.25);
    else if (e.key === '-' || e.key === '_') zoomBy(0.8);
    else if (e.key === '0' || e.key === 'r') resetView();
    else handled = false;
    if (handled) {
      e.preventDefault();
      e.stopPropagation();
    }
  };
  root.addEventListener('keydown', onKeyDown);

  // ---------------------------------------------------------------- controller
  function setOverlays(list) {
    const arr = Array.isArray(list) ? list : [];
    const incoming = arr.map((o, i) => validateOverlay(o, i)); // throws before anything changes
    // Keep each overlay's object (annotations and an in-progress drag hold it); the one being
    // dragged keeps its live geometry, so a page that answers every onGeometryChange with
    // setOverlays (new text, recomputed values) does not yank the handle from under the mouse.
    const previous = new Map(state.overlays.map((o) => [o.id, o]));
    state.overlays = incoming.map((next) => {
      const old = previous.get(next.id);
      if (!old || old.kind !== next.kind) return next;
      if (next.id === state.draggingId) {
        old.text = next.text;
        old.label = next.label;
        return old;
      }
      for (const k of Object.keys(old)) delete old[k];
      return Object.assign(old, next);
    });
    syncAnnotations();
  }

  function setOverlayVisible(kind, visible) {
    if (!KINDS.includes(kind)) throw new Error(`unknown overlay kind ${kind}`);
    state.visible[kind] = Boolean(visible);
    toggles[kind].checked = Boolean(visible);
    syncAnnotations();
  }

  /** Replace the text drawn beside one overlay (e.g. the page's "HC 172.4 mm · 20w1d"). */
  function setOverlayText(overlayId, text) {
    const o = state.overlays.find((x) => x.id === String(overlayId));
    if (!o) return;
    o.text = text == null ? null : String(text);
    state.viewport?.render();
  }

  function getState() {
    return {
      state: root.dataset.state,
      error: state.error?.message ?? null,
      sopInstanceUID: state.current?.sopInstanceUID ?? null,
      frameIndex: state.viewport ? state.viewport.getCurrentImageIdIndex() : state.frameIndex,
      numberOfFrames: state.current?.numberOfFrames ?? 0,
      frameTimeMs: state.current?.frameTimeMs ?? null,
      frameTimeSource: state.current?.frameTimeSource ?? null,
      playing: state.playing,
      cineFramesShown: state.cineFramesShown,
      cineSeconds: state.playing ? (performance.now() - state.cineStartedAt) / 1000 : null,
      firstRenderMs: state.firstRenderMs,
      zoom: state.viewport?.getZoom?.() ?? null,
      voiRange: state.viewport?.getProperties?.().voiRange ?? null,
      overlays: state.overlays.map((o) => ({ id: o.id, kind: o.kind, label: o.label, frameIndex: o.frameIndex, geometry: overlayGeometry(o) })),
      visible: { ...state.visible },
      instances: state.instances.map((x) => ({ ...x })),
    };
  }

  /** Canvas px of an image point (JSON convention) on the shown frame, for page-side UI/tests. */
  function imageToCanvas([x, y]) {
    const vp = state.viewport;
    const imageId = vp?.getCurrentImageId();
    if (!imageId) return null;
    const c = vp.worldToCanvas(imageToWorld(imageId, [x, y], vp));
    return [c[0], c[1]];
  }

  /**
   * Canvas px (relative to the canvas) of an overlay's handles on the shown frame: ellipse
   * [a-end +, a-end −, b-end +, b-end −], length [p1, p2]; null when it is not on screen.
   * For page-side UI and end-to-end tests that drag handles.
   */
  function getOverlayHandles(overlayId) {
    const o = state.overlays.find((x) => x.id === String(overlayId));
    if (!o || !state.visible[o.kind] || !state.current) return null;
    if (overlayInstance(o) !== state.current.sopInstanceUID) return null;
    if (state.viewport.getCurrentImageIdIndex() !== o.frameIndex) return null;
    const points = o.kind === 'ellipse' ? ellipseHandles(o) : o.kind === 'length' ? [o.p1, o.p2] : [];
    return points.map((p) => imageToCanvas(p));
  }

  function destroy() {
    if (state.destroyed) return;
    pause();
    state.destroyed = true;
    window.removeEventListener('unhandledrejection', onUnhandledRejection);
    eventTarget.removeEventListener(csEnums.Events.IMAGE_LOAD_ERROR, onImageLoadError);
    eventTarget.removeEventListener(csEnums.Events.IMAGE_LOAD_FAILED, onImageLoadError);
    reportWhileDragging.cancel();
    state.resizeObserver?.disconnect();
    try {
      clearAnnotations();
      if (state.toolGroup) ToolGroupManager.destroyToolGroup(toolGroupId);
      state.renderingEngine?.destroy();
    } catch (err) {
      console.warn('viewer teardown', err);
    }
    for (const sop of state.metadataBySop.keys()) {
      const inst = state.bySop.get(sop);
      if (!inst) continue;
      for (let n = 1; n <= inst.numberOfFrames; n++) {
        const imageId = frameImageId(state.root, opts.studyUID, inst.seriesInstanceUID, sop, n);
        // metadata stays registered (one shared object per instance): background frame loads
        // still in flight would otherwise fail, and a remount of the same exam reuses it
        try {
          // throws for frames never loaded; those have nothing to free
          if (cache.getImageLoadObject(imageId)) cache.removeImageLoadObject(imageId, { force: true });
        } catch {
          /* already gone */
        }
      }
    }
    element.replaceChildren();
  }

  const controller = {
    ready,
    element: root,
    showInstance,
    play,
    pause,
    step,
    seek,
    setOverlays,
    setOverlayVisible,
    setOverlayText,
    zoomBy,
    panBy,
    resetView,
    getState,
    imageToCanvas,
    getOverlayHandles,
    getCanvas: () => viewportEl.querySelector('canvas'),
    destroy,
  };

  // ---------------------------------------------------------------- start
  (async () => {
    try {
      state.overlays = (opts.overlays || []).map((o, i) => validateOverlay(o, i));
      // The first instance's metadata is fetched while Cornerstone initialises (independent).
      let firstSop;
      const metadata = guarded(
        (async () => {
          await loadInstanceList();
          firstSop = opts.initialSopInstanceUID || state.instances[0].sopInstanceUID;
          if (!state.bySop.has(firstSop)) throw new ViewerLoadError(`initial instance ${firstSop} is not in the study`);
          await ensureMetadata(state.bySop.get(firstSop));
        })(),
        'loading the DICOM metadata',
      );
      metadata.catch(() => {}); // awaited below; this only keeps it from counting as unhandled
      await initCornerstone({ cpuRendering: opts.cpuRendering, maxWebWorkers: opts.maxWebWorkers });
      await metadata;
      if (state.destroyed) return;
      setupViewport();
      renderThumbnails();
      await showInstanceNow(firstSop, opts.initialFrameIndex ?? 0);
      if (state.destroyed || state.error) return;
      state.firstRenderMs = performance.now() - t0;
      root.dataset.state = 'ready';
      const info = {
        firstRenderMs: state.firstRenderMs, // since mountExamViewer was called
        sinceNavigationMs: performance.now(), // since the page started loading (module import included)
        sopInstanceUID: state.current.sopInstanceUID,
        numberOfFrames: state.current.numberOfFrames,
        frameTimeMs: state.current.frameTimeMs,
      };
      resolveReady(info);
      try {
        opts.onReady?.(info);
      } catch (err) {
        console.error('onReady callback threw', err);
      }
    } catch (err) {
      fail(describeError(err), err);
    }
  })();

  return controller;
}

export default mountExamViewer;
