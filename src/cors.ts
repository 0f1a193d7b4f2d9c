import { Elysia } from 'elysia'
import type { Config } from './config'

const METHODS = 'GET, POST, PUT, PATCH, DELETE'
const ALLOWED_HEADERS =
  'Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id'
const EXPOSED_HEADERS =
  'X-Request-Id, Location, ETag, Retry-After, RateLimit, RateLimit-Policy, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Idempotency-Replayed'

/**
 * CORS headers for a bearer-token API (no cookies, so no credentials): `*` or an allow-list.
 * A listed origin is echoed with `Vary: Origin`; others get none and the browser blocks them.
 */
export function corsHeaders(origins: Config['corsOrigins'], request: Request) {
  const headers: Record<string, string> = {}
  if (origins !== '*') headers.vary = 'Origin'
  const origin = request.headers.get('origin')
  if (!origin || (origins !== '*' && !origins.includes(origin))) return headers
  headers['access-control-allow-origin'] = origins === '*' ? '*' : origin
  headers['access-control-expose-headers'] = EXPOSED_HEADERS
  return headers
}

/** The answer to a CORS preflight request, or undefined when the request is not one. */
export function preflightHeaders(origins: Config['corsOrigins'], request: Request) {
  if (request.method !== 'OPTIONS' || !request.headers.has('access-control-request-method'))
    return undefined
  const headers = corsHeaders(origins, request)
  if (!headers['access-control-allow-origin']) return undefined
  return {
    ...headers,
    'access-control-allow-methods': METHODS,
    'access-control-allow-headers': ALLOWED_HEADERS,
    'access-control-max-age': '600',
  }
}

/** Adds the CORS headers to every answer (preflights are answered in http.ts). */
export function cors(origins: Config['corsOrigins']) {
  return new Elysia({ name: 'cors' }).onRequest(({ request, set }) => {
    Object.assign(set.headers, corsHeaders(origins, request))
  })
}
