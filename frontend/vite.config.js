// Vite 7 app build of the exam viewer into ../static/viewer (served by Django/whitenoise).
// Settings from shared/reference/stack-notes.md: ES output (an IIFE build broke the decode
// worker), base './' so chunk/worker/wasm URLs resolve relative to viewer.js wherever
// /static/ is mounted, no inlining of assets (wasm codecs stay separate files, fetched per
// transfer syntax).
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
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
