import { Elysia } from 'elysia'
import type { Config } from './config'

const METHODS = 'GET, POST, PUT, PATCH, DELETE'
const ALLOWED_HEADERS = 'Authorization, Content-Type, If-Match, If-None-Match, X-Request-Id'
const EXPOSED_HEADERS =
  'X-Request-Id, Location, ETag, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset'

/**
 * CORS for a bearer-token API (no cookies, so no credentials): `*` or an allow-list of origins.
 * A listed origin is echoed with `Vary: Origin`; others get no CORS headers and the browser blocks.
 */
export function cors(origins: Config['corsOrigins']) {
  const allowed = (origin: string | null): string | undefined => {
    if (!origin) return undefined
    if (origins === '*') return '*'
    return origins.includes(origin) ? origin : undefined
  }
  return new Elysia({ name: 'cors' }).onRequest(({ request, set }) => {
    const origin = request.headers.get('origin')
    if (origins !== '*') set.headers.vary = 'Origin'
    const allow = allowed(origin)
    if (!allow) return
    set.headers['access-control-allow-origin'] = allow
    set.headers['access-control-expose-headers'] = EXPOSED_HEADERS
    if (request.method === 'OPTIONS' && request.headers.has('access-control-request-method')) {
      set.headers['access-control-allow-methods'] = METHODS
      set.headers['access-control-allow-headers'] = ALLOWED_HEADERS
      set.headers['access-control-max-age'] = '600'
      set.status = 204
      return new Response(null, { status: 204, headers: set.headers as Record<string, string> })
    }
  })
}
