// Vite 7 app build of the exam viewer into ../static/viewer (served by Django/whitenoise).
// Settings from shared/reference/stack-notes.md: ES output (an IIFE build broke the decode
// worker), base './' so chunk/worker/wasm URLs resolve relative to viewer.js wherever
// /static/ is mounted, no inlining of assets (wasm codecs stay separate files, fetched per
// transfer syntax).
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { defineConfig } from 'vite';

// Digest of everything the bundle is built from; tests/frontend/test_bundle_freshness.py
// recomputes it to catch a committed bundle that is older than its sources.
const DIGEST_INPUTS = ['src', 'public', 'package.json', 'package-lock.json', 'vite.config.js'];

function sourcesDigest() {
  const files = [];
  const walk = (p) => {
    if (statSync(p).isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
    else files.push(relative(__dirname, p).split(sep).join('/'));
  };
  for (const input of DIGEST_INPUTS) walk(join(__dirname, input));
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\n`);
    h.update(`${createHash('sha256').update(readFileSync(join(__dirname, f))).digest('hex')}\n`);
  }
  return { sourcesSha256: h.digest('hex'), files };
}

const buildInfo = {
  name: 'sonoreview-build-info',
  generateBundle() {
    const pkg = JSON.parse(readFileSync(join(__dirname, 'package-lock.json'), 'utf8'));
    const version = (name) => pkg.packages?.[`node_modules/${name}`]?.version;
    const info = {
      ...sourcesDigest(),
      cornerstone: {
        core: version('@cornerstonejs/core'),
        tools: version('@cornerstonejs/tools'),
        dicomImageLoader: version('@cornerstonejs/dicom-image-loader'),
      },
      rebuild: 'cd frontend && npm ci && npm run build',
    };
    this.emitFile({ type: 'asset', fileName: 'build-info.json', source: `${JSON.stringify(info, null, 2)}\n` });
  },
};

// Cornerstone's CPU path mixes CSS-sized canvases with devicePixelRatio scaling (see the patch).
const cpuDprFix = {
  name: 'sonoreview-cpu-dpr-fix',
  enforce: 'pre',
  load(id) {
    if (id.split(sep).join('/').endsWith('/cpuFallback/rendering/cssPixelConversion.js')) {
      return readFileSync(resolve(__dirname, 'src/patches/cssPixelConversion.js'), 'utf8');
    }
    return null;
  },
};

export default defineConfig({
  plugins: [cpuDprFix, buildInfo],
  base: './',
  publicDir: 'public', // harness.html copied as is: it imports ./viewer.js like the review page
  build: {
    outDir: resolve(__dirname, '../static/viewer'),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 6000,
    reportCompressedSize: false,
    rollupOptions: {
      input: { viewer: resolve(__dirname, 'src/viewer.js') },
      // an app build drops entry exports by default; the entry IS the public API
      preserveEntrySignatures: 'exports-only',
      output: {
        format: 'es',
        entryFileNames: '[name].js', // stable: the page imports /static/viewer/viewer.js
        chunkFileNames: 'chunks/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  worker: {
    format: 'es',
    rollupOptions: {
      output: {
        entryFileNames: 'workers/[name]-[hash].js',
        chunkFileNames: 'workers/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
});
