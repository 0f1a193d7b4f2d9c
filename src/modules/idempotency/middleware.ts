import { createHash } from 'node:crypto'
import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { describeError } from '../../logger'
import { conflict, HttpProblem } from '../../problems'
import type { RequestAuthenticator } from '../auth/guard'
import { claimKey, deleteExpiredKeys, releaseKey, selectLiveKey, storeAnswer } from './queries'

/** Answers are kept this long per (caller, key). */
export const KEEP_SECONDS = 24 * 60 * 60
const PRUNE_EVERY_MS = 60 * 60 * 1000

// 1 to 255 printable ASCII characters (draft-ietf-httpapi-idempotency-key-header).
const KEY = /^[\x20-\x7e]{1,255}$/

/** POST routes whose answers carry a secret: a stored answer must never hold one. */
const SECRET_ROUTES = [
  /^\/api\/v1\/auth\//,
  /^\/api\/v1\/tokens$/,
  /^\/api\/v1\/projects\/:id\/webhooks$/,
  /^\/api\/v1\/projects\/:id\/webhooks\/:webhook_id\/rotate-secret$/,
]

// The answer headers a replay repeats.
const KEPT_HEADERS = ['location', 'etag']

const badKey = (detail: string) => new HttpProblem(400, 'Bad request', detail)

type Claim = { userId: string; key: string }

/**
 * Idempotency-Key for every POST under /api/v1. The key is claimed by an insert (so of two
 * requests with one key, on any instance, one runs and the other gets 409); a 2xx answer is kept
 * for 24 hours and replayed with `Idempotency-Replayed: true`; any other answer gives the key back.
 */
export function idempotency(ctx: AppContext, authenticateRequest: RequestAuthenticator) {
  const claims = new WeakMap<Request, Claim>()
  let pruner: ReturnType<typeof setInterval> | undefined
  return new Elysia({ name: 'idempotency' })
    .onStart(() => {
      const prune = () =>
        deleteExpiredKeys(ctx.sql).catch((error: unknown) =>
          ctx.log.warn('idempotency key prune failed', describeError(error)),
        )
      void prune()
      pruner = setInterval(prune, PRUNE_EVERY_MS)
      pruner.unref()
    })
    .onStop(() => clearInterval(pruner))
    .onBeforeHandle({ as: 'global' }, async ({ request, body, route }) => {
      const key = request.headers.get('idempotency-key')
      if (key === null || request.method !== 'POST' || !route.startsWith('/api/v1/')) return
      if (SECRET_ROUTES.some((pattern) => pattern.test(route)))
        throw badKey('This route’s answer holds a secret: it does not take an Idempotency-Key')
      if (!KEY.test(key))
        throw badKey('Idempotency-Key must be 1 to 255 printable ASCII characters')
      const { userId } = await authenticateRequest(request)
      const fingerprint = await fingerprintOf(request, body)
      for (let attempt = 0; attempt < 3; attempt += 1) {
        if (await claimKey(ctx.sql, userId, key, fingerprint, KEEP_SECONDS)) {
          claims.set(request, { userId, key })
          return
        }
        const stored = await selectLiveKey(ctx.sql, userId, key)
        if (!stored) continue // expired or given back meanwhile: claim it again
        if (stored.fingerprint !== fingerprint)
          throw new HttpProblem(
            422,
            'Idempotency-Key reused',
            'This Idempotency-Key was used for a different request',
          )
        if (stored.status === null)
          throw conflict('A request with this Idempotency-Key is still being processed')
        return replay(stored.status, stored.body, stored.headers)
      }
      throw conflict('A request with this Idempotency-Key is still being processed')
    })
    .onAfterHandle({ as: 'global' }, async ({ request, response, set }) => {
      const claim = claims.get(request)
      if (!claim) return
      claims.delete(request)
      const status = typeof set.status === 'number' ? set.status : 200
      if (status < 200 || status > 299 || response instanceof Response) {
        await releaseKey(ctx.sql, claim.userId, claim.key)
        return
      }
      const headers: Record<string, string> = {}
      for (const name of KEPT_HEADERS) {
        const value = set.headers[name]
        if (typeof value === 'string') headers[name] = value
      }
      const text = response === undefined ? '' : JSON.stringify(response)
      await storeAnswer(ctx.sql, claim.userId, claim.key, { status, body: text, headers })
    })
    .onAfterResponse({ as: 'global' }, async ({ request }) => {
      // An error answered this request after its key was claimed: give the key back.
      const claim = claims.get(request)
      if (!claim) return
      claims.delete(request)
      await releaseKey(ctx.sql, claim.userId, claim.key).catch((error: unknown) =>
        ctx.log.warn('idempotency key release failed', describeError(error)),
      )
    })
}

function replay(status: number, body: string | null, headers: Record<string, string>) {
  const out = new Headers(headers)
  out.set('idempotency-replayed', 'true')
  if (body) out.set('content-type', 'application/json')
  return new Response(body || null, { status, headers: out })
}

/** The request as the key binds it: method, path and query, and a hash of the parsed body. */
async function fingerprintOf(request: Request, body: unknown) {
  const url = new URL(request.url)
  const hash = createHash('sha256')
  hash.update(`${request.method} ${url.pathname}${url.search}\n`)
  // A body still unread is streamed by the route itself (an upload): it cannot be read here
  // without breaking that stream (Bun locks it on clone), so such a request is bound by method,
  // path and content type only, and another file with the same key replays the first answer.
  const unread = request.body !== null && !request.bodyUsed
  const type = (request.headers.get('content-type') ?? '').split(';')[0]
  hash.update(unread ? `unread body: ${type}` : await canonical(body))
  return hash.digest('hex')
}

/** JSON of the body, with uploaded files replaced by their name, type, size and SHA-256. */
async function canonical(value: unknown): Promise<string> {
  if (value instanceof Blob) {
    const digest = createHash('sha256')
      .update(new Uint8Array(await value.arrayBuffer()))
      .digest('hex')
    const name = value instanceof File ? value.name : ''
    return JSON.stringify({ file: name, type: value.type, size: value.size, sha256: digest })
  }
  if (Array.isArray(value)) return `[${(await Promise.all(value.map(canonical))).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const parts = await Promise.all(
      Object.entries(value).map(async ([k, v]) => `${JSON.stringify(k)}:${await canonical(v)}`),
    )
    return `{${parts.join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}
