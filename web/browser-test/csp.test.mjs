// The mock server's Content-Security-Policy is the Go front service's (pageCSP in
// internal/httpapi/static.go), so the browser test against the mock checks the real policy.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { pageCSP } from './csp.mjs';

test('the mock sends the policy of internal/httpapi/static.go', () => {
  const go = readFileSync(new URL('../../internal/httpapi/static.go', import.meta.url), 'utf8');
  // const pageCSP = "..." +
  //         "..."
  const decl = /^const pageCSP = ((?:"[^"\n]*"(?:\s*\+\s*)?)+)$/m.exec(go);
  expect(decl, 'const pageCSP = "..." + "..." in static.go').not.toBeNull();
  const value = [...decl[1].matchAll(/"([^"\n]*)"/g)].map((m) => m[1]).join('');
  expect(value).toContain("style-src 'self'");
  expect(pageCSP).toBe(value);
});
