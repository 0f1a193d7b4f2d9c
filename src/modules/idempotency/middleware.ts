import { createHash } from 'node:crypto'
import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import type { Executor } from '../../db'
import { describeError } from '../../logger'
import { conflict, HttpProblem } from '../../problems'
import type { RequestAuthenticator } from '../auth/guard'
import {
  claimKey,
  deleteExpiredKeys,
  releaseKey,
  type StoredAnswer,
  selectLiveKey,
  storeAnswer,
} from './queries'

/**
 * A claim still without an answer after this long was abandoned (its process died mid-request):
 * a retry takes it over. Twice the request deadline, and at least a minute.
 */
export const staleClaimSeconds = (config: { requestTimeoutMs: number }) =>
  Math.max(60, Math.ceil((2 * config.requestTimeoutMs) / 1000))

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

type Claim = {
  userId: string
  key: string
  /** This request's hold on the key (see claimKey). */
  id: string
  /** An upload's file digest, once its route has read it (see bindStreamedBody). */
  bodyDigest: string | null
  /** The answer was stored in the handler's transaction: nothing is left to do after it. */
  storedInTransaction: boolean
}

// Per request (Request objects are unique; the entries go with them). One map for every app in
// the process, so that services can reach the claim of the request they serve.
const claims = new WeakMap<Request, Claim>()
// An upload retried with a key whose answer is stored: the route decides, once it has read the
// file, between the replay (the same file) and 422 (another one).
const deferredReplays = new WeakMap<Request, StoredAnswer>()

type ResponseState = { status?: number | string; headers: Record<string, unknown> }

/** The status and kept headers of an answer being built. */
function answerOf(set: ResponseState, body: unknown) {
  const status = typeof set.status === 'number' ? set.status : 200
  const headers: Record<string, string> = {}
  for (const name of KEPT_HEADERS) {
    const value = set.headers[name]
    if (typeof value === 'string') headers[name] = value
  }
  return { status, body: body === undefined ? '' : JSON.stringify(body), headers }
}

/** The last step of a handler's transaction: stores the request's answer in it. */
export type AnswerInTransaction<T> = (tx: Executor, result: T) => Promise<void>

/**
 * For a handler whose change is one transaction: undefined when the request has no key, else the
 * function its service calls last inside that transaction with the result. It builds the answer
 * with `respond` (the same function the handler answers with) and writes it to the claimed key's
 * row in the transaction, so the change and its stored answer commit together or not at all.
 */
export function answerInTransaction<T>(
  request: Request,
  set: ResponseState,
  respond: (result: T) => unknown,
): AnswerInTransaction<T> | undefined {
  const claim = claims.get(request)
  if (!claim) return undefined
  return async (tx, result) => {
    const answer = answerOf(set, respond(result))
    if (answer.status < 200 || answer.status > 299) return
    const stored = await storeAnswer(tx, claim.userId, claim.key, claim.id, {
      ...answer,
      bodyDigest: claim.bodyDigest,
    })
    // The claim was taken over (this request outlived the stale bound): its change must not
    // commit, since the request that took the key over runs it.
    if (!stored) throw takenOver()
    claim.storedInTransaction = true
  }
}

/**
 * For a route that reads its body itself (an upload): binds the key to the body's digest now
 * that it is known. Returns the stored answer to replay when this retry sends the same body;
 * throws 422 when it sends another; undefined otherwise (no key, or the first request).
 */
export function bindStreamedBody(request: Request, digest: string): Response | undefined {
  const claim = claims.get(request)
  if (claim) {
    claim.bodyDigest = digest
    return undefined
  }
  const stored = deferredReplays.get(request)
  if (!stored) return undefined
  deferredReplays.delete(request)
  if (stored.body_digest !== digest || stored.status === null) throw reused()
  return replay(stored.status, stored.body, stored.headers)
}

const takenOver = () =>
  conflict('This request took too long: its Idempotency-Key was taken over by a retry')

const reused = () =>
  new HttpProblem(
    422,
    'Idempotency-Key reused',
    'This Idempotency-Key was used for a different request',
  )

/**
 * Idempotency-Key for every POST under /api/v1. The key is claimed by an insert, committed before
 * the handler runs (so of two requests with one key, on any instance, one runs and the other gets
 * 409); a 2xx answer is kept for 24 hours and replayed with `Idempotency-Replayed: true`; any
 * other answer gives the key back. A handler with a transaction stores the answer in it (see
 * answerInTransaction); the others' answers are stored after the handler.
 */
export function idempotency(ctx: AppContext, authenticateRequest: RequestAuthenticator) {
  const limits = { ttlSeconds: KEEP_SECONDS, staleSeconds: staleClaimSeconds(ctx.config) }
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
      const principal = await authenticateRequest(request)
      const { userId } = principal
      const scoped = principal.token ? tokenScopedKey(principal.sessionId, key) : key
      const { fingerprint, streamed } = await fingerprintOf(request, body)
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const id = crypto.randomUUID()
        if (await claimKey(ctx.sql, userId, scoped, fingerprint, id, limits)) {
          claims.set(request, {
            userId,
            key: scoped,
            id,
            bodyDigest: null,
            storedInTransaction: false,
          })
          return
        }
        const stored = await selectLiveKey(ctx.sql, userId, scoped)
        if (!stored) continue // expired or given back meanwhile: claim it again
        if (stored.fingerprint !== fingerprint) throw reused()
        if (stored.status === null)
          throw conflict('A request with this Idempotency-Key is still being processed')
        if (streamed) {
          // Only the route can read this body: it replays or refuses (bindStreamedBody).
          deferredReplays.set(request, stored)
          return
        }
        return replay(stored.status, stored.body, stored.headers)
      }
      throw conflict('A request with this Idempotency-Key is still being processed')
    })
    .onAfterHandle({ as: 'global' }, async ({ request, response, set }) => {
      const claim = claims.get(request)
      if (!claim) return
      claims.delete(request)
      // Stored with the change, in the handler's transaction.
      if (claim.storedInTransaction) return
      const answer = answerOf(set, response)
      if (answer.status < 200 || answer.status > 299 || response instanceof Response) {
        await releaseKey(ctx.sql, claim.userId, claim.key, claim.id)
        return
      }
      await storeAnswer(ctx.sql, claim.userId, claim.key, claim.id, {
        ...answer,
        bodyDigest: claim.bodyDigest,
      })
    })
    .onAfterResponse({ as: 'global' }, async ({ request }) => {
      // An error answered this request after its key was claimed: give the key back.
      const claim = claims.get(request)
      if (!claim) return
      claims.delete(request)
      await releaseKey(ctx.sql, claim.userId, claim.key, claim.id).catch((error: unknown) =>
        ctx.log.warn('idempotency key release failed', describeError(error)),
      )
    })
}

/**
 * An API token's keys are its own: a replay skips the handler and its checks, so a token limited
 * to some projects must not be handed its owner's stored answer about another project. Hashed,
 * so that a 255-character key still fits the column with the token's id.
 */
const tokenScopedKey = (tokenId: string, key: string) =>
  `token:${tokenId}:${createHash('sha256').update(key).digest('hex')}`

function replay(status: number, body: string | null, headers: Record<string, string>) {
  const out = new Headers(headers)
  out.set('idempotency-replayed', 'true')
  if (body) out.set('content-type', 'application/json')
  return new Response(body || null, { status, headers: out })
}

/**
 * The request as the key binds it: method, path and query, and a hash of the parsed body. A body
 * still unread is streamed by the route itself (an upload): it cannot be read here without
 * breaking that stream (Bun locks it on clone), so it is bound here by its content type, and by
 * its digest once the route has read it (bindStreamedBody).
 */
async function fingerprintOf(request: Request, body: unknown) {
  const url = new URL(request.url)
  const hash = createHash('sha256')
  hash.update(`${request.method} ${url.pathname}${url.search}\n`)
  const streamed = request.body !== null && !request.bodyUsed
  const type = (request.headers.get('content-type') ?? '').split(';')[0]
  hash.update(streamed ? `unread body: ${type}` : await canonical(body))
  return { fingerprint: hash.digest('hex'), streamed }
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
