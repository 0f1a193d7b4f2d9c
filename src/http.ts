import { isIP } from 'node:net'
import { Elysia } from 'elysia'
import type { Config } from './config'
import { corsHeaders, preflightHeaders } from './cors'
import { databaseUnavailable } from './db-faults'
import { jsonTextTooDeep, valueTooDeep } from './json-depth'
import { describeError, type Logger } from './logger'
import type { ObserveRequest } from './metrics'
import { recordRequest } from './modules/admin/request-stats'
import {
  HttpProblem,
  invalid,
  malformedBody,
  nestedTooDeep,
  payloadTooLarge,
  postgresProblem,
  problemResponse,
  unsupportedMediaType,
  validationFieldErrors,
} from './problems'

type RequestState = {
  id: string
  start: number
  userId?: string
  ip: string | null
  userAgent: string | null
}

const states = new WeakMap<Request, RequestState>()
// An incoming X-Request-Id is echoed only when it is short and made of safe characters.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function requestId(request: Request): string {
  return states.get(request)?.id ?? 'unknown'
}

/** Lets the request log line name the authenticated user. */
export function noteUser(request: Request, userId: string) {
  const state = states.get(request)
  if (state) state.userId = userId
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

const mediaType = (header: string | null) =>
  (header ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
const isJson = (type: string) =>
  type === 'application/json' || /^application\/[\w.+-]+\+json$/.test(type)

/**
 * Reads a JSON body counting bytes as they arrive, so a chunked body (no Content-Length) cannot
 * pass MAX_JSON_BODY_BYTES either, and refuses nesting past MAX_JSON_DEPTH before parsing; an
 * empty body reads as null (and then fails validation).
 */
async function readJson(request: Request, limit: number, maxDepth: number): Promise<unknown> {
  const text = await readText(request, limit)
  if (text.trim() === '') return null
  if (jsonTextTooDeep(text, maxDepth)) throw nestedTooDeep(maxDepth)
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw malformedBody()
  }
  // Every body of this API is an object; Elysia lets a bare string or number through a schema
  // whose fields are all optional, so refuse them here.
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid([{ path: '', message: 'must be a JSON object' }])
  return body
}

/**
 * The body as text. With a Content-Length (already checked against the limit by bodyProblem, and
 * the most the server reads) the runtime reads it in one go; a chunked body is read as a stream,
 * counting bytes as they arrive.
 */
async function readText(request: Request, limit: number): Promise<string> {
  if (!request.headers.has('transfer-encoding') && request.headers.has('content-length'))
    return request.text()
  const chunks: Uint8Array[] = []
  let size = 0
  if (request.body)
    for await (const chunk of request.body) {
      size += chunk.byteLength
      if (size > limit) throw payloadTooLarge(`JSON bodies are limited to ${limit} bytes`)
      chunks.push(chunk)
    }
  return new TextDecoder().decode(Buffer.concat(chunks))
}

function bodyProblem(request: Request, config: Config): HttpProblem | undefined {
  if (!BODY_METHODS.has(request.method)) return undefined
  const length = request.headers.get('content-length')
  const chunked = request.headers.has('transfer-encoding')
  if (!chunked && (length === null || length === '0')) return undefined
  const type = mediaType(request.headers.get('content-type'))
  const json = isJson(type)
  if (!json && type !== 'multipart/form-data')
    return unsupportedMediaType('Send JSON (application/json) or multipart/form-data')
  if (json && length !== null && Number(length) > config.maxJsonBodyBytes)
    return payloadTooLarge(`JSON bodies are limited to ${config.maxJsonBodyBytes} bytes`)
  return undefined
}

/**
 * Runs before a request's body is read, with the matched route template (`/api/v1/tasks/:id`);
 * the app authenticates guarded routes here, so an anonymous body is never parsed.
 */
export type BeforeBody = (request: Request, route: string) => Promise<unknown> | undefined

/**
 * Request id, body checks, the single error chokepoint and one log line per request.
 * Every error leaves as problem+json; a 500 says nothing about its cause.
 */
export function httpBasics(
  config: Config,
  log: Logger,
  beforeBody?: BeforeBody,
  observe?: ObserveRequest,
) {
  const logged = (request: Request, status: number, route: string) =>
    logRequest(log, request, status, route, observe)
  return (
    new Elysia({ name: 'http-basics' })
      .onRequest(({ request, set, server }) => {
        const incoming = request.headers.get('x-request-id')
        const id = incoming && SANE_REQUEST_ID.test(incoming) ? incoming : Bun.randomUUIDv7()
        // The caller, for the log line (failed logins can be traced to an address) and the rate
        // limiter (callerOf): read once, while the connection is surely there.
        const { ip, userAgent } = clientOf(request, server, config.trustProxy)
        states.set(request, { id, start: performance.now(), ip, userAgent })
        set.headers['x-request-id'] = id
        const preflight = preflightHeaders(config.corsOrigins, request)
        if (preflight) {
          set.status = 204
          // Elysia runs no onAfterResponse for an answer from onRequest: log it here.
          logged(request, 204, UNROUTED)
          return new Response(null, { status: 204, headers: { ...preflight, 'x-request-id': id } })
        }
        const problem = bodyProblem(request, config)
        if (problem) {
          set.status = problem.status
          logged(request, problem.status, UNROUTED)
          return problemResponse(problem.status, problem.title, id, {
            detail: problem.detail,
            // The CORS plugin has not run yet: without its headers a browser could not read this.
            headers: corsHeaders(config.corsOrigins, request),
          })
        }
      })
      .onParse({ as: 'global' }, async ({ request, contentType, route }) => {
        await beforeBody?.(request, route)
        if (isJson(mediaType(contentType)))
          return readJson(request, config.maxJsonBodyBytes, config.maxJsonDepth)
      })
      // Elysia itself parses JSON text found in multipart fields and query values: bound those too.
      .onTransform({ as: 'global' }, ({ body, query }) => {
        if (valueTooDeep(body, config.maxJsonDepth) || valueTooDeep(query, config.maxJsonDepth))
          throw nestedTooDeep(config.maxJsonDepth)
      })
      .onError({ as: 'global' }, ({ code, error, request, set, query }) => {
        const id = requestId(request)
        const answer = (
          status: number,
          title: string,
          extra: Parameters<typeof problemResponse>[3],
        ) => {
          set.status = status
          return problemResponse(status, title, id, extra)
        }
        // Elysia wraps whatever a parser throws (our 413 and 400 included) in a ParseError.
        const cause = code === 'PARSE' ? (error as Error).cause : error
        if (cause instanceof HttpProblem)
          return answer(cause.status, cause.title, { detail: cause.detail, ...cause.extra })
        const unavailable = databaseUnavailable(cause)
        if (unavailable) {
          log.warn('database unavailable', { request_id: id, ...describeError(cause) })
          return answer(unavailable.status, unavailable.title, {
            detail: unavailable.detail,
            ...unavailable.extra,
          })
        }
        if (code === 'VALIDATION' && error.type !== 'response') {
          const problem = invalid(
            validationFieldErrors(error as Parameters<typeof validationFieldErrors>[0], query),
          )
          return answer(problem.status, problem.title, { detail: problem.detail, ...problem.extra })
        }
        if (code === 'PARSE') {
          const problem = malformedBody()
          return answer(problem.status, problem.title, { detail: problem.detail })
        }
        if (code === 'NOT_FOUND') return answer(404, 'Not found', { detail: 'No such route' })
        const known = postgresProblem(error)
        if (known) {
          // A client's value the database refused (a NUL byte, a duplicate): no stack trace, and
          // a value it cannot store (class 22) is not even a warning.
          const { stack: _stack, ...details } = describeError(error)
          const pgCode = (error as { code?: string }).code ?? ''
          if (pgCode.startsWith('22'))
            log.info('database refused a value', { request_id: id, ...details })
          else log.warn('database constraint', { request_id: id, ...details })
          return answer(known.status, known.title, { detail: known.detail })
        }
        log.error('unhandled error', { request_id: id, code, ...describeError(error) })
        return answer(500, 'Internal server error', { detail: 'An unexpected error occurred' })
      })
      .onAfterResponse({ as: 'global' }, ({ request, set, route }) => {
        logged(request, typeof set.status === 'number' ? set.status : 200, route)
      })
  )
}

/** The route label of answers given before routing (413, 415, CORS preflights). */
const UNROUTED = 'unrouted'

/**
 * One log line per request, its count and latency in the admin metrics and in the Prometheus
 * ones (`observe`), early answers included.
 */
function logRequest(
  log: Logger,
  request: Request,
  status: number,
  route: string,
  observe: ObserveRequest | undefined,
) {
  const state = states.get(request)
  if (!state) return
  const ms = performance.now() - state.start
  recordRequest(status, ms)
  observe?.(request.method, route, status, ms / 1000)
  log.info('request', {
    method: request.method,
    path: pathOf(request.url),
    status,
    ms: Math.round(ms * 100) / 100,
    request_id: state.id,
    user_id: state.userId,
    ip: state.ip,
    user_agent: state.userAgent?.slice(0, 512) ?? null,
  })
}

function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('://') + 3)
  const end = url.indexOf('?', start)
  return start === -1 ? '/' : url.slice(start, end === -1 ? undefined : end)
}

type Peer = { requestIP(request: Request): { address: string } | null } | null

/** The caller's address as httpBasics read it for this request (clientOf when it did not). */
export function callerAddress(request: Request, server: Peer, trustProxy: boolean) {
  const state = states.get(request)
  return state ? state.ip : clientOf(request, server, trustProxy).ip
}

/**
 * The caller's user agent and address. Behind a trusted proxy the address is the last
 * X-Forwarded-For entry, the one that proxy appended; earlier entries are the client's own claim.
 */
export function clientOf(request: Request, server: Peer, trustProxy: boolean) {
  const forwarded = trustProxy
    ? request.headers.get('x-forwarded-for')?.split(',').at(-1)?.trim()
    : undefined
  const ip = forwarded || server?.requestIP(request)?.address || null
  return { userAgent: request.headers.get('user-agent'), ip: ip && isIP(ip) ? ip : null }
}

/** 201 with a Location header, as every create answers. */
export function created<T>(
  set: { status?: number | string; headers: Record<string, unknown> },
  location: string,
  body: T,
): T {
  set.status = 201
  set.headers.location = location
  return body
}

/** 204: the handler's promise resolved with nothing to say. */
export function noContent(set: { status?: number | string }) {
  set.status = 204
}
