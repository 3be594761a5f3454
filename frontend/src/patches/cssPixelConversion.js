// Replaces @cornerstonejs/core's RenderingEngine/helpers/cpuFallback/rendering/cssPixelConversion.js
// (vite.config.js, plugin sonoreview-cpu-dpr-fix). Cornerstone 5.14's CPU stack viewport is added
// as a "custom viewport" whose canvas is sized in CSS pixels (canvas.width = clientWidth), but
// these conversions divided / multiplied by window.devicePixelRatio, so on any screen with a
// ratio ≠ 1 (HiDPI laptops, 150 % Windows scaling) overlays were drawn at 1/ratio of their place
// and handles could not be grabbed. With a CSS-sized canvas, device pixels ARE CSS pixels.
// Only StackViewport's CPU path imports this module.
export function deviceToCssPixels(point) {
  return [point[0], point[1]];
}

export function cssToDevicePixels(point) {
  return [point[0], point[1]];
}
