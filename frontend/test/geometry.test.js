// Unit tests of the pure overlay geometry: `npm test` (node --test, no browser).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  distanceToEllipse,
  dragEllipseHandle,
  ellipseHandles,
  ellipseOutline,
  normalizeEllipse,
  overlayGeometry,
  validateOverlay,
} from '../src/geometry.js';

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);
const E = { cx: 100, cy: 80, a: 40, b: 25, angle: 0.3 };

test('handles sit at the axis ends, b-axis turned +90° (towards +y)', () => {
  const [ap, am, bp, bm] = ellipseHandles(E);
  close(Math.hypot(ap[0] - E.cx, ap[1] - E.cy), 40);
  close(Math.hypot(bm[0] - E.cx, bm[1] - E.cy), 25);
  close(Math.atan2(ap[1] - E.cy, ap[0] - E.cx), 0.3);
  close(Math.atan2(bp[1] - E.cy, bp[0] - E.cx), 0.3 + Math.PI / 2);
  close((ap[0] + am[0]) / 2, E.cx);
});

test('dragging an a-end keeps the other end, turns the ellipse, keeps b', () => {
  const [, am] = ellipseHandles(E);
  const p = [160, 130];
  const r = dragEllipseHandle(E, 0, p);
  close(r.cx, (p[0] + am[0]) / 2);
  close(r.cy, (p[1] + am[1]) / 2);
  close(r.a, Math.hypot(p[0] - am[0], p[1] - am[1]) / 2);
  close(r.angle, Math.atan2(p[1] - am[1], p[0] - am[0]));
  close(r.b, 25);
  // the dragged handle is where the pointer is
  const [ap2] = ellipseHandles(r);
  close(ap2[0], p[0]);
  close(ap2[1], p[1]);
});

test('dragging the minus a-end moves that end', () => {
  const [ap] = ellipseHandles(E);
  const r = dragEllipseHandle(E, 1, [50, 50]);
  const [ap2, am2] = ellipseHandles(r);
  close(ap2[0], ap[0]);
  close(ap2[1], ap[1]);
  close(am2[0], 50);
  close(am2[1], 50);
});

test('dragging a b-end changes b only (distance from the a-axis line)', () => {
  const [, , bp] = ellipseHandles(E);
  const along = [Math.cos(E.angle) * 7, Math.sin(E.angle) * 7]; // sliding along a: no effect
  const normal = [-Math.sin(E.angle), Math.cos(E.angle)];
  const r = dragEllipseHandle(E, 2, [bp[0] + along[0] + 5 * normal[0], bp[1] + along[1] + 5 * normal[1]]);
  close(r.b, 30);
  for (const k of ['cx', 'cy', 'a', 'angle']) close(r[k], E[k]);
});

test('normalise: a ≥ b and angle in [−π/2, π/2) describe the same ellipse', () => {
  const n = normalizeEllipse({ cx: 0, cy: 0, a: 10, b: 20, angle: 3.0 });
  close(n.a, 20);
  close(n.b, 10);
  assert.ok(n.angle >= -Math.PI / 2 && n.angle < Math.PI / 2);
  // every outline point of the original lies on the normalised ellipse
  for (const p of ellipseOutline({ cx: 0, cy: 0, a: 10, b: 20, angle: 3.0 }, 16)) {
    close(distanceToEllipse(n, p), 0, 1e-9);
  }
});

test('validateOverlay names the bad field; overlayGeometry reports normalised ellipses', () => {
  assert.throws(() => validateOverlay({ kind: 'ellipse', id: 'e', cx: 1, cy: 1, a: -1, b: 2 }), /semi-axes/);
  assert.throws(() => validateOverlay({ kind: 'length', id: 'l', p1: [0, 0] }), /p2 must be \[x, y\]/);
  assert.throws(() => validateOverlay({ kind: 'circle', id: 'c' }), /kind must be/);
  assert.throws(() => validateOverlay({ kind: 'contour', id: 'k', frameIndex: -1, points: [[0, 0], [1, 1]] }), /frameIndex/);
  const o = validateOverlay({ kind: 'ellipse', id: 7, label: 'HC', cx: 1, cy: 2, a: 3, b: 4, angle: 0 });
  assert.equal(o.id, '7');
  const g = overlayGeometry(o);
  close(g.a, 4);
  close(g.b, 3);
  close(g.angle, -Math.PI / 2);
  const c = validateOverlay({ kind: 'contour', id: 'k', points: [[0, 0], [1, 1]], editable: true });
  assert.equal(c.editable, false); // contours are display only
});
