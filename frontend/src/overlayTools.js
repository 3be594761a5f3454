// Cornerstone3D annotation tools for the review overlays: rotated ellipse (HC/AC), caliper line
// (BPD/OFD/FL) and segmentation contour (display only).
//
// Why custom tools rather than EllipticalROITool / LengthTool / PlanarFreehandROITool:
//  * EllipticalROITool is axis-aligned; fetal head and abdomen ellipses are rotated, and the
//    geometry (cx, cy, a, b, angle) must survive editing exactly.
//  * The page computes mm / GA / EFW / centiles on the server from the calibration region that
//    holds all points (single source of truth), so the tools carry no statistics of their own and
//    show the page's text instead (PlanarFreehandROI labels pixel areas cm², SplineROI stats throw
//    on US-region images in tools 5.14 — neither matters here because nothing is computed).
//
// The overlay object (image px, pixel centres at integers — see geometry.js) is the single source
// of truth, kept in annotation.data.overlay; world-space handles are derived from it for
// Cornerstone's hit-testing and re-derived after every change.

import { utilities as csUtils, getEnabledElement } from '@cornerstonejs/core';
import {
  AnnotationTool,
  annotation as annotationApi,
  cursors,
  drawing,
  utilities as toolsUtils,
} from '@cornerstonejs/tools';
import {
  distanceToEllipse,
  distanceToSegment,
  dragEllipseHandle,
  ellipseHandles,
  ellipseOutline,
  fromCornerstone,
  HALF_PIXEL,
  toCornerstone,
  translateEllipse,
} from './geometry.js';

const { drawHandles, drawPolyline, drawLine, drawTextBox } = drawing;
const { triggerAnnotationRenderForViewportIds } = toolsUtils;

/** Overlay colours, one per label (kind as fallback); tests look for them on screen. */
export const OVERLAY_COLORS = {
  HC: 'rgb(0, 229, 255)',
  AC: 'rgb(255, 179, 0)',
  BPD: 'rgb(118, 255, 3)',
  OFD: 'rgb(213, 0, 249)',
  FL: 'rgb(255, 234, 0)',
  ellipse: 'rgb(0, 229, 255)',
  length: 'rgb(118, 255, 3)',
  contour: 'rgb(255, 64, 129)',
};

export function overlayColor(overlay) {
  if (overlay.kind === 'contour') return OVERLAY_COLORS.contour;
  return OVERLAY_COLORS[overlay.label] || OVERLAY_COLORS[overlay.kind];
}

/** DOM event fired on the viewport element while/after an overlay is dragged. */
export const OVERLAY_EDIT_EVENT = 'sonoreview:overlayedit';

// Cornerstone's image<->world helpers follow DICOM (Image Position = centre of the first pixel),
// as its WebGL path draws; its CPU path draws the first pixel's CORNER at Image Position
// (legacy cornerstone pixel coordinates), i.e. half a pixel off. Overlays must sit on the pixels
// actually drawn, so the CPU path gets the extra half pixel (measured by the browser tests).
function cpuOffset(viewport) {
  return viewport?.useCPURendering ? HALF_PIXEL : 0;
}

function imageToWorld(imageId, p, viewport) {
  const o = cpuOffset(viewport);
  const [x, y] = toCornerstone(p);
  return csUtils.imageToWorldCoords(imageId, [x + o, y + o]);
}

function worldToImage(imageId, w, viewport) {
  const o = cpuOffset(viewport);
  const [x, y] = fromCornerstone(csUtils.worldToImageCoords(imageId, w));
  return [x - o, y - o];
}

/** Common machinery: handle/outline dragging in image px, rendering through subclasses. */
class SonoOverlayTool extends AnnotationTool {
  constructor(toolProps = {}, defaultToolProps = { supportedInteractionTypes: ['Mouse', 'Touch'], configuration: {} }) {
    super(toolProps, defaultToolProps);
    this.editData = null;
    this.isDrawing = false;

    // Bound as instance fields (Cornerstone calls them detached).
    this._dragCallback = (evt) => this._onDrag(evt);
    this._endCallback = (evt) => this._onEnd(evt);
  }

  // --- subclass interface (image px) -------------------------------------------------------
  /** Handle points of the overlay in image px. */
  handlePoints(_overlay) {
    return [];
  }
  /** Mutate overlay for handle index dragged to image point p. */
  applyHandleDrag(_overlay, _start, _index, _p) {}
  /** Mutate overlay for a translation by (dx, dy) from its state at drag start. */
  applyTranslate(_overlay, _start, _dx, _dy) {}
  /** Distance in image px from p to the drawn shape (for hit-testing the body). */
  distanceTo(_overlay, _p) {
    return Infinity;
  }
  /** Draw the overlay; canvas(p) maps image px to canvas px. */
  drawOverlay(_svg, _annotationUID, _overlay, _canvas, _style) {}

  // --- Cornerstone tool API ----------------------------------------------------------------
  /** Re-derive the world-space handles (Cornerstone's hit-testing) from the overlay. */
  static syncHandles(annotation, viewport) {
    const { overlay } = annotation.data;
    const imageId = annotation.metadata.referencedImageId;
    const proto = OVERLAY_TOOLS[overlay.kind].prototype;
    annotation.data.handles.points = proto.handlePoints(overlay).map((p) => imageToWorld(imageId, p, viewport));
  }

  addNewAnnotation() {
    // Overlays come from the page (setOverlays); creating new ones by mouse is the page's job.
    return undefined;
  }

  isPointNearTool(element, annotation, canvasCoords, proximity) {
    const { viewport } = getEnabledElement(element);
    const imageId = annotation.metadata.referencedImageId;
    const p = worldToImage(imageId, viewport.canvasToWorld(canvasCoords), viewport);
    // proximity is in canvas px; convert to image px with the current zoom
    const p2 = worldToImage(imageId, viewport.canvasToWorld([canvasCoords[0] + proximity, canvasCoords[1]]), viewport);
    const tol = Math.hypot(p2[0] - p[0], p2[1] - p[1]);
    return this.distanceTo(annotation.data.overlay, p) <= tol;
  }

  toolSelectedCallback(evt, annotation) {
    this._beginEdit(evt, annotation, undefined);
  }

  handleSelectedCallback(evt, annotation, handle) {
    const index = annotation.data.handles.points.findIndex((p) => p === handle);
    this._beginEdit(evt, annotation, index >= 0 ? index : undefined);
  }

  _beginEdit(evt, annotation, handleIndex) {
    const { element, currentPoints } = evt.detail;
    if (!annotation.data.overlay.editable) return;
    const imageId = annotation.metadata.referencedImageId;
    annotation.highlighted = true;
    const { viewport } = getEnabledElement(element);
    const viewportIdsToRender = [viewport.id];
    this.editData = {
      annotation,
      viewport,
      viewportIdsToRender,
      handleIndex,
      startOverlay: structuredClone(stripOverlay(annotation.data.overlay)),
      startPoint: worldToImage(imageId, currentPoints.world, viewport),
      hasMoved: false,
    };
    this.isDrawing = true;
    this._activateModify(element);
    cursors.elementCursor.hideElementCursor(element);
    triggerAnnotationRenderForViewportIds(viewportIdsToRender);
    evt.preventDefault();
  }

  _onDrag(evt) {
    if (!this.editData) return;
    const { element, currentPoints } = evt.detail;
    const { annotation, viewport, viewportIdsToRender, handleIndex, startOverlay, startPoint } = this.editData;
    const imageId = annotation.metadata.referencedImageId;
    const p = worldToImage(imageId, currentPoints.world, viewport);
    const overlay = annotation.data.overlay;
    if (handleIndex === undefined) {
      this.applyTranslate(overlay, startOverlay, p[0] - startPoint[0], p[1] - startPoint[1]);
    } else {
      this.applyHandleDrag(overlay, startOverlay, handleIndex, p);
    }
    SonoOverlayTool.syncHandles(annotation, viewport);
    annotation.invalidated = true;
    this.editData.hasMoved = true;
    triggerAnnotationRenderForViewportIds(viewportIdsToRender);
    element.dispatchEvent(new CustomEvent(OVERLAY_EDIT_EVENT, { detail: { overlay, final: false } }));
  }

  _onEnd(evt) {
    if (!this.editData) return;
    const { element } = evt.detail;
    const { annotation, viewportIdsToRender, hasMoved } = this.editData;
    annotation.data.handles.activeHandleIndex = null;
    annotation.highlighted = false;
    this._deactivateModify(element);
    cursors.elementCursor.resetElementCursor(element);
    this.editData = null;
    this.isDrawing = false;
    triggerAnnotationRenderForViewportIds(viewportIdsToRender);
    if (hasMoved) {
      element.dispatchEvent(
        new CustomEvent(OVERLAY_EDIT_EVENT, { detail: { overlay: annotation.data.overlay, final: true } }),
      );
    }
  }

  cancel(element) {
    if (!this.editData) return undefined;
    const { annotation, viewport, startOverlay, viewportIdsToRender } = this.editData;
    Object.assign(annotation.data.overlay, startOverlay);
    SonoOverlayTool.syncHandles(annotation, viewport);
    this._deactivateModify(element);
    cursors.elementCursor.resetElementCursor(element);
    this.editData = null;
    this.isDrawing = false;
    triggerAnnotationRenderForViewportIds(viewportIdsToRender);
    return annotation.annotationUID;
  }

  renderAnnotation = (enabledElement, svgDrawingHelper) => {
    const { viewport } = enabledElement;
    const { element } = viewport;
    let annotations = annotationApi.state.getAnnotations(this.getToolName(), element);
    if (!annotations?.length) return false;
    annotations = this.filterInteractableAnnotationsForElement(element, annotations);
    if (!annotations?.length) return false;
    let rendered = false;
    for (const annotation of annotations) {
      const { annotationUID, data } = annotation;
      const overlay = data.overlay;
      if (!overlay) continue;
      const imageId = annotation.metadata.referencedImageId;
      const canvas = (p) => viewport.worldToCanvas(imageToWorld(imageId, p, viewport));
      const highlighted = annotation.highlighted || (this.editData && this.editData.annotation === annotation);
      const style = {
        color: overlayColor(overlay),
        lineWidth: highlighted ? 3 : 2,
      };
      this.drawOverlay(svgDrawingHelper, annotationUID, overlay, canvas, style);
      // handles always shown on editable overlays: the physician must see what can be grabbed
      if (overlay.editable) {
        const handleCanvas = this.handlePoints(overlay).map(canvas);
        drawHandles(svgDrawingHelper, annotationUID, '0', handleCanvas, {
          color: style.color,
          handleRadius: highlighted ? 5 : 4,
          type: 'circle',
        });
      }
      rendered = true;
    }
    return rendered;
  };
}

function stripOverlay(overlay) {
  const { ...copy } = overlay;
  return copy;
}

function labelPosition(points) {
  // up-right of the top-most point
  let best = points[0];
  for (const p of points) if (p[1] < best[1]) best = p;
  return [best[0] + 6, best[1] - 24];
}

function drawLabel(svg, uid, overlay, canvasPoints, style) {
  const text = overlay.text || overlay.label;
  if (!text) return;
  drawTextBox(svg, uid, 'label', [text], labelPosition(canvasPoints), {
    color: style.color,
    fontSize: '13px',
    background: 'rgba(0, 0, 0, 0.55)',
    padding: 0,
  });
}

export class SonoEllipseTool extends SonoOverlayTool {
  static toolName = 'SonoEllipse';

  handlePoints(o) {
    return ellipseHandles(o);
  }
  applyHandleDrag(o, start, index, p) {
    Object.assign(o, dragEllipseHandle(start, index, p));
  }
  applyTranslate(o, start, dx, dy) {
    Object.assign(o, translateEllipse(start, dx, dy));
  }
  distanceTo(o, p) {
    return distanceToEllipse(o, p);
  }
  drawOverlay(svg, uid, o, canvas, style) {
    const pts = ellipseOutline(o, 120).map(canvas);
    drawPolyline(svg, uid, 'outline', pts, { color: style.color, lineWidth: style.lineWidth, closePath: true });
    const h = ellipseHandles(o).map(canvas);
    // the axes, thin and dashed, so the physician sees where a and b are measured
    drawLine(svg, uid, 'axisA', h[0], h[1], { color: style.color, width: 1, lineDash: '4,4' });
    drawLine(svg, uid, 'axisB', h[2], h[3], { color: style.color, width: 1, lineDash: '4,4' });
    drawLabel(svg, uid, o, pts, style);
  }
}

export class SonoLengthTool extends SonoOverlayTool {
  static toolName = 'SonoLength';

  handlePoints(o) {
    return [o.p1, o.p2];
  }
  applyHandleDrag(o, _start, index, p) {
    if (index === 0) o.p1 = [p[0], p[1]];
    else o.p2 = [p[0], p[1]];
  }
  applyTranslate(o, start, dx, dy) {
    o.p1 = [start.p1[0] + dx, start.p1[1] + dy];
    o.p2 = [start.p2[0] + dx, start.p2[1] + dy];
  }
  distanceTo(o, p) {
    return distanceToSegment(o.p1, o.p2, p);
  }
  drawOverlay(svg, uid, o, canvas, style) {
    const c1 = canvas(o.p1);
    const c2 = canvas(o.p2);
    drawLine(svg, uid, 'line', c1, c2, { color: style.color, width: style.lineWidth });
    drawLabel(svg, uid, o, [c1, c2], style);
  }
}

export class SonoContourTool extends SonoOverlayTool {
  static toolName = 'SonoContour';

  distanceTo() {
    return Infinity; // display only: never picked
  }
  drawOverlay(svg, uid, o, canvas, style) {
    const pts = o.points.map(canvas);
    drawPolyline(svg, uid, 'contour', pts, { color: style.color, lineWidth: 2, closePath: true });
    drawLabel(svg, uid, o, pts, style);
  }
}

export const OVERLAY_TOOLS = {
  ellipse: SonoEllipseTool,
  length: SonoLengthTool,
  contour: SonoContourTool,
};

export { SonoOverlayTool as SonoOverlayToolBase, imageToWorld, worldToImage };
