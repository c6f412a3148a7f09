// The Content-Security-Policy the front service sends with the page: the constant pageCSP in
// internal/httpapi/static.go. The mock server sends this copy; csp.test.mjs (run by `npm test`)
// fails when the two differ.
export const pageCSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
