import { type TSchema, Type as t } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

export type FieldError = { path: string; message: string }

/** An error a client is meant to see: status, title and detail reach the body as they are. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string>; code?: string } = {},
  ) {
    super(detail ?? title)
  }
}

export const malformedBody = () =>
  new HttpProblem(400, 'Bad request', 'The request body is not well-formed JSON')
export const nestedTooDeep = (max: number) =>
  new HttpProblem(400, 'Bad request', `JSON may nest objects and arrays at most ${max} levels deep`)
export const unauthorized = (detail = 'Authentication required') =>
  new HttpProblem(401, 'Unauthorized', detail, { headers: { 'www-authenticate': 'Bearer' } })
export const forbidden = (detail = 'You are not allowed to do this') =>
  new HttpProblem(403, 'Forbidden', detail)
export const notFound = (detail = 'No such resource') => new HttpProblem(404, 'Not found', detail)
export const conflict = (detail: string) => new HttpProblem(409, 'Conflict', detail)
export const payloadTooLarge = (detail: string) => new HttpProblem(413, 'Payload too large', detail)
export const unsupportedMediaType = (detail: string) =>
  new HttpProblem(415, 'Unsupported media type', detail)
/** 503 for a server that is busy rather than broken; the client may retry after `seconds`. */
export const busy = (detail: string, seconds = 1) =>
  new HttpProblem(503, 'Service unavailable', detail, {
    headers: { 'retry-after': String(seconds) },
  })
export const invalid = (errors: FieldError[]) =>
  new HttpProblem(422, 'Validation failed', describe(errors), { errors })

const describe = (errors: FieldError[]) =>
  errors.map((e) => `${e.path.slice(1).replaceAll('/', '.') || 'request'} ${e.message}`).join('; ')

/** The body every error answers with (RFC 9457); the OpenAPI document refers to it. */
export const Problem = t.Object(
  {
    type: t.String({ examples: ['about:blank'] }),
    title: t.String(),
    status: t.Integer(),
    detail: t.Optional(t.String()),
    request_id: t.String(),
    code: t.Optional(t.String({ description: 'Machine-readable reason, e.g. `replay_gap`' })),
    errors: t.Optional(t.Array(t.Object({ path: t.String(), message: t.String() }))),
  },
  { description: 'RFC 9457 problem details' },
)

export function problemResponse(
  status: number,
  title: string,
  requestId: string,
  extra: {
    detail?: string
    errors?: FieldError[]
    headers?: Record<string, string>
    code?: string
  } = {},
): Response {
  const body = {
    type: 'about:blank',
    title,
    status,
    ...(extra.detail ? { detail: extra.detail } : {}),
    request_id: requestId,
    ...(extra.code ? { code: extra.code } : {}),
    ...(extra.errors ? { errors: extra.errors } : {}),
  }
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      ...extra.headers,
      'content-type': 'application/problem+json',
      'x-request-id': requestId,
    },
  })
}

type PostgresLike = { code?: unknown; severity?: unknown; routine?: unknown }

/** postgres.js errors carry a SQLSTATE code; anything else from the driver stays internal. */
export function postgresProblem(error: unknown): HttpProblem | undefined {
  if (!(error instanceof Error)) return undefined
  const pg = error as PostgresLike
  if (typeof pg.code !== 'string' || pg.severity === undefined) return undefined
  switch (pg.code) {
    case '23505':
      return conflict('A resource with the same unique value already exists')
    case '23503':
      return conflict('The request refers to a resource that does not exist or is still in use')
    case '23514':
    case '22001':
    case '22003':
      return new HttpProblem(422, 'Validation failed', 'A value is out of its allowed range')
    // NUL bytes and other text PostgreSQL cannot store; malformed values of a column's type.
    case '22021':
    case '22P05':
    case '22P02':
      return new HttpProblem(
        422,
        'Validation failed',
        'A value contains characters or a format that cannot be stored',
      )
    default:
      return undefined
  }
}

type ElysiaValueError = { path: string; message: string; schema?: TSchema; value?: unknown }

/**
 * Field errors from an Elysia ValidationError, with useful messages and never the rejected value.
 * Elysia wraps coerced numbers in unions ("Expected union value") and, for query properties it
 * converts itself, loses the path; both are repaired here.
 */
export function fieldErrors(
  all: ElysiaValueError[],
  raw?: Record<string, unknown>,
  value?: unknown,
): FieldError[] {
  const seen = new Set<string>()
  const out: FieldError[] = []
  for (const item of all) {
    const path = item.path || guessPath(raw, value)
    const message = betterMessage(item)
    const key = `${path}\u0000${message}`
    if (seen.has(key) || seen.has(`${path}\u0000`)) continue
    seen.add(key)
    seen.add(`${path}\u0000`)
    out.push({ path, message })
  }
  return out.length > 0 ? out : [{ path: '', message: 'is invalid' }]
}

/**
 * The field errors of an Elysia validation error. A query array that Elysia splits itself (a
 * comma list) fails as TypeBox's TransformDecodeCheckError, which has no `all`, only its first
 * `error`, with a path inside the array: it is placed under the query field whose raw value it
 * decoded.
 */
export function validationFieldErrors(
  error: { all?: ElysiaValueError[]; value?: unknown; error?: ElysiaValueError },
  raw?: Record<string, unknown>,
): FieldError[] {
  // `all` is a getter that validates the value again: read it once.
  const all = error.all
  if (Array.isArray(all)) return fieldErrors(all, raw, error.value)
  const inner = error.error
  if (!inner) return fieldErrors([], raw)
  return fieldErrors([{ ...inner, path: `${guessPath(raw, error.value)}${inner.path}` }], raw)
}

function guessPath(raw: Record<string, unknown> | undefined, value: unknown): string {
  if (!raw) return ''
  const same = (k: string) =>
    String(raw[k]) === String(value) || (typeof value === 'number' && Number(raw[k]) === value)
  const matches = Object.keys(raw).filter(same)
  return matches.length === 1 ? `/${matches[0]}` : ''
}

// Elysia's own helper member of a coerced number union: a string with format integer or numeric.
const isCoercionHelper = (s: TSchema) =>
  s.type === 'string' && (s.format === 'integer' || s.format === 'numeric')

function betterMessage(item: ElysiaValueError): string {
  const schema = item.schema
  if (!schema || !Array.isArray(schema.anyOf)) return lowerFirst(item.message)
  const members = (schema.anyOf as TSchema[]).filter(
    (m) => m.type !== 'null' && !isCoercionHelper(m),
  )
  if (members.length > 0 && members.every((m) => m.const !== undefined))
    return `must be one of: ${members.map((m) => String(m.const)).join(', ')}`
  if (members.length === 1 && members[0]) {
    const member = members[0]
    const value = coerce(member, item.value)
    const first = Value.Errors(member, value).First()
    if (first) return lowerFirst(first.message)
    if (member.type === 'integer') return 'expected integer'
  }
  return lowerFirst(item.message)
}

function coerce(schema: TSchema, value: unknown): unknown {
  if ((schema.type === 'integer' || schema.type === 'number') && typeof value === 'string') {
    const n = Number(value)
    return value.trim() === '' || Number.isNaN(n) ? value : n
  }
  return value
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1)
