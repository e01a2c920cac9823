/**
 * Headers for the built app. The CSP allows exactly what v86 needs in a worker:
 * 'wasm-unsafe-eval' (its JIT compiles wasm) and blob: workers (its scheduler helper);
 * without them the emulator runs 0 instructions and says nothing (docs/design.md).
 * connect-src allows any http(s) origin for ?net=fetch, whose guest HTTP becomes fetch().
 */
export function securityHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': [
      "default-src 'self'",
      "script-src 'self' 'wasm-unsafe-eval'",
      "worker-src 'self' blob:",
      "style-src 'self' 'unsafe-inline'",
      "connect-src 'self' ws: wss: http: https:",
      "img-src 'self' data: blob:",
      "object-src 'none'",
      "base-uri 'self'",
    ].join('; '),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
}
