import { createHash } from 'node:crypto'
import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { callerAddress } from '../../http'
import { HttpProblem } from '../../problems'
import { type Decision, TokenBuckets } from './buckets'

/** Where the sign-in routes live; they get the tighter `auth` buckets as well. */
const LOGIN = '/api/v1/auth/login'
const REGISTER = '/api/v1/auth/register'
const REFRESH = '/api/v1/auth/refresh'
const AUTH_PATHS = new Set([LOGIN, REGISTER, REFRESH])

type Limited = { decisions: Map<string, Decision> }
const limitedRequests = new WeakMap<Request, Limited>()

const WS = '/ws'
const failedUpgrades = new WeakMap<Request, () => void>()

/**
 * A WebSocket upgrade whose token was refused costs its address a token of the `api` policy, as
 * a bad token on /api/ does (an API token is looked up in the database): throws the 429 once the
 * address is over its limit. Sockets that authenticate are bounded by WS_MAX_SOCKETS_PER_USER.
 */
export function chargeFailedUpgrade(request: Request) {
  failedUpgrades.get(request)?.()
}

/** Rate-limit rejections so far in this process, by policy (read by the metrics). */
export const rejections = new Map<string, number>()

export const tooManyRequests = (decision: Decision) =>
  new HttpProblem(
    429,
    'Too many requests',
    `At most ${decision.limit} requests per ${decision.windowSeconds} s; retry after ${decision.retryAfterSeconds} s`,
    { headers: { 'retry-after': String(decision.retryAfterSeconds) } },
  )

const pathOf = (url: string) => {
  const start = url.indexOf('/', url.indexOf('://') + 3)
  const end = url.indexOf('?', start)
  return start === -1 ? '/' : url.slice(start, end === -1 ? undefined : end)
}

/**
 * The IETF RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers) listing
 * every policy this request was counted against, and the older RateLimit-Limit / -Remaining /
 * -Reset trio for the one closest to its limit.
 */
function rateLimitHeaders(decisions: Map<string, Decision>): Record<string, string> {
  const policies: string[] = []
  const states: string[] = []
  let tightest: Decision | undefined
  for (const [name, d] of decisions) {
    policies.push(`"${name}";q=${d.limit};w=${d.windowSeconds}`)
    states.push(`"${name}";r=${d.remaining};t=${d.resetSeconds}`)
    if (!tightest || d.remaining < tightest.remaining) tightest = d
  }
  if (!tightest) return {}
  return {
    'ratelimit-policy': policies.join(', '),
    ratelimit: states.join(', '),
    'ratelimit-limit': String(tightest.limit),
    'ratelimit-remaining': String(tightest.remaining),
    'ratelimit-reset': String(tightest.resetSeconds),
  }
}

/**
 * Per-instance rate limits on /api/: a token bucket per user for authenticated requests and per
 * client address otherwise (X-Forwarded-For only with TRUST_PROXY), plus tighter `auth` buckets
 * on login and register (per address and per email) and on refresh (per address and per refresh
 * token, that is per session). Every /api/ request is counted before its route runs (or is
 * found missing): anonymous ones at once, those with a token once it is checked. 429
 * problem+json with Retry-After beyond.
 *
 * `authenticate` is the app's per-request authenticator (the caller's principal, or a 401).
 */
export function rateLimits(
  config: Config,
  authenticate: (request: Request) => Promise<{ userId: string }>,
) {
  const { requests, authRequests, windowSeconds, maxKeys } = config.rateLimit
  const api = requests > 0 ? new TokenBuckets(requests, windowSeconds, maxKeys) : undefined
  const auth = authRequests > 0 ? new TokenBuckets(authRequests, windowSeconds, maxKeys) : undefined
  const plugin = new Elysia({ name: 'rate-limits' })
  if (!api && !auth) return plugin

  const count = (
    request: Request,
    set: { headers: Record<string, unknown> },
    policy: string,
    buckets: TokenBuckets | undefined,
    key: string,
  ) => {
    if (!buckets) return
    let limited = limitedRequests.get(request)
    if (!limited) {
      limited = { decisions: new Map() }
      limitedRequests.set(request, limited)
    }
    const decision = buckets.take(key)
    const previous = limited.decisions.get(policy)
    if (!previous || decision.remaining <= previous.remaining)
      limited.decisions.set(policy, decision)
    Object.assign(set.headers, rateLimitHeaders(limited.decisions))
    if (!decision.allowed) {
      rejections.set(policy, (rejections.get(policy) ?? 0) + 1)
      throw tooManyRequests(decision)
    }
  }

  // Every /api/ request is counted here, routed or not (a 404 too): an anonymous one by address
  // at once, one with an Authorization header by the user its token authenticates, else by
  // address. The authenticator keeps its answer per request, so guarded routes do not check twice.
  plugin.onRequest(async ({ request, server, set }) => {
    const path = pathOf(request.url)
    if (path === WS && api) {
      const address = callerAddress(request, server, config.trustProxy) ?? 'unknown'
      failedUpgrades.set(request, () => count(request, set, 'api', api, `ip:${address}`))
      return
    }
    if (!path.startsWith('/api/') || request.method === 'OPTIONS') return
    const address = callerAddress(request, server, config.trustProxy) ?? 'unknown'
    if (request.method === 'POST' && AUTH_PATHS.has(path))
      count(request, set, 'auth', auth, `ip:${address}`)
    if (!api) return
    if (!request.headers.has('authorization')) {
      count(request, set, 'api', api, `ip:${address}`)
      return
    }
    // A bad token costs its address a token: guessing tokens is not free. Its 401 comes from the
    // route's guard (or none, on a route that needs no token).
    const userId = await authenticate(request).then(
      (principal) => principal.userId,
      () => undefined,
    )
    count(request, set, 'api', api, userId ? `user:${userId}` : `ip:${address}`)
  })
  if (auth)
    plugin.onBeforeHandle({ as: 'global' }, ({ request, route, body, set }) => {
      if (request.method !== 'POST' || !AUTH_PATHS.has(route)) return
      const fields = (body ?? {}) as { email?: unknown; refresh_token?: unknown }
      if (route === REFRESH && typeof fields.refresh_token === 'string')
        count(request, set, 'auth', auth, `session:${digest(fields.refresh_token)}`)
      else if (typeof fields.email === 'string')
        count(request, set, 'auth', auth, `email:${fields.email.trim().toLowerCase()}`)
    })
  return plugin
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64url')
