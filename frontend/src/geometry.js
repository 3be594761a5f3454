// Pure overlay geometry in IMAGE PIXELS (no Cornerstone imports, unit-tested with `node --test`).
//
// Convention (same as inference/geometry.py): a point is [x, y] = [column, row] with pixel centres
// at integer coordinates (the centre of the top-left pixel is [0, 0]); an ellipse is
// {cx, cy, a, b, angle}: semi-axes a ≥ b in pixels, angle = direction of the a-axis in radians
// from +x towards +y (clockwise on screen, rows grow downwards).
//
// Cornerstone's image coordinates put [0, 0] on the top-left CORNER of the top-left pixel, so
// points are shifted by half a pixel on the way in and out (toCornerstone / fromCornerstone).

export const HALF_PIXEL = 0.5;

export function toCornerstone([x, y]) {
  return [x + HALF_PIXEL, y + HALF_PIXEL];
}

export function fromCornerstone([x, y]) {
  return [x - HALF_PIXEL, y - HALF_PIXEL];
}

/**
 * The four axis-end handles of an ellipse, in image px:
 * [a-end +, a-end −, b-end +, b-end −] (the b-axis points at angle + π/2).
 */
export function ellipseHandles({ cx, cy, a, b, angle }) {
  const ux = Math.cos(angle);
  const uy = Math.sin(angle);
  // b-direction = a-direction rotated by +90° (towards +y)
  const vx = -uy;
  const vy = ux;
  return [
    [cx + a * ux, cy + a * uy],
    [cx - a * ux, cy - a * uy],
    [cx + b * vx, cy + b * vy],
    [cx - b * vx, cy - b * vy],
  ];
}

/**
 * Ellipse after dragging handle `index` (0..3, order of ellipseHandles) to image point `p`.
 *
 * Caliper behaviour of ultrasound machines: moving one end of the a-axis keeps the OTHER end
 * fixed (centre moves to the midpoint, the ellipse turns with the axis, b is kept); moving an end
 * of the b-axis changes b only (its distance from the a-axis line), centre and angle kept.
 * The result is NOT normalised (a may become < b; angle unbounded) so that handle indices stay
 * attached to the same end while a drag is in progress; call normalizeEllipse for reporting.
 */
export function dragEllipseHandle(e, index, p) {
  const [px, py] = p;
  if (index === 0 || index === 1) {
    const handles = ellipseHandles(e);
    const [fx, fy] = handles[index === 0 ? 1 : 0]; // the fixed opposite end
    const dx = index === 0 ? px - fx : fx - px; // direction of the + end from the − end
    const dy = index === 0 ? py - fy : fy - py;
    const len = Math.hypot(dx, dy);
    if (len < 1e-6) return { ...e };
    return {
      cx: (px + fx) / 2,
      cy: (py + fy) / 2,
      a: len / 2,
      b: e.b,
      angle: Math.atan2(dy, dx),
    };
  }
  // b-end: signed distance from the a-axis line along the b-direction
  const vx = -Math.sin(e.angle);
  const vy = Math.cos(e.angle);
  const d = Math.abs((px - e.cx) * vx + (py - e.cy) * vy);
  return { ...e, b: Math.max(d, 1e-3) };
}

export function translateEllipse(e, dx, dy) {
  return { ...e, cx: e.cx + dx, cy: e.cy + dy };
}

/** Same ellipse with a ≥ b and angle in [−π/2, π/2). */
export function normalizeEllipse({ cx, cy, a, b, angle }) {
  let A = a;
  let B = b;
  let t = angle;
  if (B > A) {
    [A, B] = [B, A];
    t += Math.PI / 2;
  }
  t = ((((t + Math.PI / 2) % Math.PI) + Math.PI) % Math.PI) - Math.PI / 2;
  return { cx, cy, a: A, b: B, angle: t };
}

/** `n` points on the ellipse outline (image px), for drawing as a closed polyline. */
export function ellipseOutline({ cx, cy, a, b, angle }, n = 96) {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const pts = [];
  for (let i = 0; i < n; i++) {
    const t = (2 * Math.PI * i) / n;
    const x = a * Math.cos(t);
    const y = b * Math.sin(t);
    pts.push([cx + x * c - y * s, cy + x * s + y * c]);
  }
  return pts;
}

/**
 * Distance (image px, approximate: exact on the axes) from point p to the ellipse outline,
 * used for hit-testing the outline.
 */
export function distanceToEllipse({ cx, cy, a, b, angle }, [px, py]) {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const dx = px - cx;
  const dy = py - cy;
  const x = dx * c + dy * s;
  const y = -dx * s + dy * c;
  const r = Math.hypot(x, y);
  if (r < 1e-9) return Math.min(a, b);
  // the outline point on the ray from the centre through p
  const k = 1 / Math.sqrt((x * x) / (a * a) + (y * y) / (b * b));
  return Math.abs(r - k * r);
}

export function distanceToSegment([x1, y1], [x2, y2], [px, py]) {
  const dx = x2 - x1;
  const dy = y2 - y1;
  const l2 = dx * dx + dy * dy;
  const t = l2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / l2));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}

// ----------------------------------------------------------------------------- overlay schema

/**
 * Validate one overlay object; returns a normalised copy or throws an Error naming the field.
 */
export function validateOverlay(o, index = 0) {
  const where = `overlay #${index}${o && o.id != null ? ` (id ${o.id})` : ''}`;
  if (!o || typeof o !== 'object') throw new Error(`${where}: not an object`);
  const num = (v, name) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${where}: ${name} must be a finite number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const point = (p, name) => {
    if (!Array.isArray(p) || p.length < 2) throw new Error(`${where}: ${name} must be [x, y]`);
    return [num(p[0], `${name}[0]`), num(p[1], `${name}[1]`)];
  };
  if (o.id == null || o.id === '') throw new Error(`${where}: id is required`);
  const frameIndex = o.frameIndex ?? 0;
  if (!Number.isInteger(frameIndex) || frameIndex < 0) {
    throw new Error(`${where}: frameIndex must be an integer ≥ 0 (0-based), got ${o.frameIndex}`);
  }
  const base = {
    id: String(o.id),
    kind: o.kind,
    label: o.label == null ? '' : String(o.label),
    frameIndex,
    sopInstanceUID: o.sopInstanceUID ?? null,
    text: o.text == null ? null : String(o.text),
    editable: o.editable !== false,
  };
  if (o.kind === 'ellipse') {
    const a = num(o.a, 'a');
    const b = num(o.b, 'b');
    if (a <= 0 || b <= 0) throw new Error(`${where}: semi-axes a and b must be > 0`);
    return { ...base, cx: num(o.cx, 'cx'), cy: num(o.cy, 'cy'), a, b, angle: num(o.angle ?? 0, 'angle') };
  }
  if (o.kind === 'length') {
    return { ...base, p1: point(o.p1, 'p1'), p2: point(o.p2, 'p2') };
  }
  if (o.kind === 'contour') {
    if (!Array.isArray(o.points) || o.points.length < 2) {
      throw new Error(`${where}: points must be a list of at least 2 [x, y]`);
    }
    return { ...base, editable: false, points: o.points.map((p, i) => point(p, `points[${i}]`)) };
  }
  throw new Error(`${where}: kind must be 'ellipse', 'length' or 'contour', got ${JSON.stringify(o.kind)}`);
}

/** Geometry part of an overlay as reported to onGeometryChange. */
export function overlayGeometry(o) {
  if (o.kind === 'ellipse') {
    const n = normalizeEllipse(o);
    return { cx: n.cx, cy: n.cy, a: n.a, b: n.b, angle: n.angle };
  }
  if (o.kind === 'length') return { p1: [...o.p1], p2: [...o.p2] };
  return { points: o.points.map((p) => [...p]) };
}
