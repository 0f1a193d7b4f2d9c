import { Elysia } from 'elysia'
import type { Config } from './config'
import { notFound } from './problems'

/** Answers that hand out tokens: never stored by any cache. */
const SECRET_PREFIXES = ['/api/v1/auth/']

const pathOf = (url: string) => {
  const start = url.indexOf('/', url.indexOf('://') + 3)
  const end = url.indexOf('?', start)
  return start === -1 ? '/' : url.slice(start, end === -1 ? undefined : end)
}

const isDocs = (path: string) => path === '/docs' || path.startsWith('/docs/')

/**
 * `nosniff` and `no-referrer` on every answer, as Elysia's default headers (each request's
 * `set.headers` starts from them: no hook to run), so the answers httpBasics gives early (413,
 * 415, preflights) have them too.
 */
export function responseHeaders() {
  return new Elysia({ name: 'response-headers' }).headers({
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  })
}

/**
 * On the API and /health: `Cache-Control: no-store` for answers that carry tokens (and anonymous
 * ones), `private, no-cache` with `Vary: Authorization` on other authenticated answers, so a
 * browser may keep them but must revalidate (If-None-Match) with the server, which checks access
 * again. With DOCS_ENABLED=false every /docs path is a 404. Registered after httpBasics (the
 * request has its id) and after CORS (whose `Vary: Origin` is kept).
 */
export function cacheHeaders(config: Config) {
  return new Elysia({ name: 'cache-headers' }).onRequest(({ request, set }) => {
    const path = pathOf(request.url)
    if (!config.docsEnabled && isDocs(path)) throw notFound('No such route')
    if (!path.startsWith('/api/') && path !== '/health') return
    const secret = SECRET_PREFIXES.some((prefix) => path.startsWith(prefix))
    if (secret || !request.headers.has('authorization')) set.headers['cache-control'] = 'no-store'
    else {
      set.headers['cache-control'] = 'private, no-cache'
      set.headers.vary = set.headers.vary ? `${set.headers.vary}, Authorization` : 'Authorization'
    }
  })
}
