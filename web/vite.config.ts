/// <reference types="vitest/config" />
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

// The Go package web embeds dist/ with //go:embed all:dist, and dist/.keep is committed so that
// package compiles before the page is built. Vite's emptyOutDir would delete .keep, so empty
// dist ourselves and keep it, even when a build fails half way.
function emptyDistKeepingDotKeep(dir: string): Plugin {
  return {
    name: 'coderun-empty-dist',
    apply: 'build',
    buildStart() {
      let entries: string[] = [];
      try {
        entries = readdirSync(dir);
      } catch {
        return;
      }
      for (const entry of entries) {
        if (entry !== '.keep') rmSync(join(dir, entry), { recursive: true, force: true });
      }
    },
  };
}

// Where `npm run dev` sends API calls: the front service (make dev prints its address).
const api = process.env.CODERUN_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  plugins: [react(), emptyDistKeepingDotKeep(join(import.meta.dirname, 'dist'))],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: false,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(
      ['/execute', '/submit', '/submissions', '/snippets', '/runtimes', '/healthz'].map((p) => [p, api]),
    ),
  },
  preview: { host: '127.0.0.1' },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'browser-test/**/*.test.mjs'],
  },
});
