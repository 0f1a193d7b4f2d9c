import { toOpenAPISchema } from '@elysiajs/openapi'
import type { AnyElysia } from 'elysia'
import { Elysia } from 'elysia'
import pkg from '../package.json'
import { docsUi } from './docs-ui'
import { Problem } from './problems'

type Json = Record<string, unknown>
type Documentation = Json & { info: Json }

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

// JSON Schema keywords whose values are schemas, maps of schemas or lists of schemas.
const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'dependentSchemas']
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems']
const SCHEMA_VALUES = [
  'items',
  'additionalProperties',
  'unevaluatedProperties',
  'contains',
  'not',
  'if',
  'then',
  'else',
  'propertyNames',
]
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']
const REASONS: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No content',
  206: 'Partial content',
  301: 'Moved permanently',
  302: 'Found',
  304: 'Not modified',
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition failed',
  413: 'Content too large',
  415: 'Unsupported media type',
  422: 'Validation failed',
  429: 'Too many requests',
  500: 'Internal server error',
  503: 'Service unavailable',
}

// Elysia's member of a coerced union (query strings, t.Integer, t.Numeric, t.BooleanString ...):
// a string with a format naming the real type, which means nothing on the wire of a JSON body.
const isCoercionHelper = (s: unknown) =>
  isObject(s) &&
  s.type === 'string' &&
  (s.format === 'integer' || s.format === 'numeric' || s.format === 'boolean')

// t.Date(): a Date object in, an RFC 3339 string on the wire.
const isDateUnion = (members: unknown[]) =>
  members.some((m) => isObject(m) && m.type === 'string' && m.format === 'date-time') &&
  members.every(
    (m) =>
      isObject(m) &&
      (m.type === 'number' ||
        m.type === 'integer' ||
        (m.type === 'string' && (m.format === 'date-time' || m.format === 'date'))),
  )

const allowsNull = (s: Json) =>
  s.type === 'null' ||
  (Array.isArray(s.type) && s.type.includes('null')) ||
  (Array.isArray(s.anyOf) && s.anyOf.some((m) => isObject(m) && m.type === 'null')) ||
  (Array.isArray(s.oneOf) && s.oneOf.some((m) => isObject(m) && m.type === 'null'))

/** Adds null to what a schema accepts, in OpenAPI 3.1 form (a type list or an anyOf member). */
function withNull(s: Json): Json {
  if (allowsNull(s)) return s
  if (typeof s.type === 'string') {
    const out: Json = { ...s, type: [s.type, 'null'] }
    if (Array.isArray(s.enum) && !s.enum.includes(null)) out.enum = [...s.enum, null]
    return out
  }
  if (Array.isArray(s.anyOf)) return { ...s, anyOf: [...s.anyOf, { type: 'null' }] }
  const { description, ...rest } = s
  return { anyOf: [rest, { type: 'null' }], ...(description ? { description } : {}) }
}

/**
 * One schema in OpenAPI 3.1 form, children first: `nullable` (3.0 only) becomes a null type,
 * Elysia's coercion unions collapse to the declared type, and an enum of a nullable type lists
 * null too.
 */
export function normalizeSchema(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeSchema)
  if (!isObject(value)) return value
  let s: Json = { ...value }
  for (const key of SCHEMA_MAPS)
    if (isObject(s[key]))
      s[key] = Object.fromEntries(
        Object.entries(s[key] as Json).map(([k, v]) => [k, normalizeSchema(v)]),
      )
  for (const key of SCHEMA_LISTS) if (Array.isArray(s[key])) s[key] = normalizeSchema(s[key])
  for (const key of SCHEMA_VALUES) if (isObject(s[key])) s[key] = normalizeSchema(s[key])

  if (Array.isArray(s.anyOf) && s.anyOf.some(isCoercionHelper)) {
    const declared = s.anyOf.filter((m) => !isCoercionHelper(m))
    if (declared.length === 1 && isObject(declared[0])) {
      const { anyOf: _, ...rest } = s
      s = { ...rest, ...declared[0] }
    }
  }
  if (Array.isArray(s.anyOf) && isDateUnion(s.anyOf)) {
    const { anyOf: _, ...rest } = s
    s = { ...rest, type: 'string', format: 'date-time' }
  }
  // Elysia gives t.File() the default "File", which is no value of a binary string.
  if (s.format === 'binary' && s.default === 'File') delete s.default
  if ('nullable' in s) {
    const nullable = s.nullable === true
    delete s.nullable
    if (nullable) s = withNull(s)
  }
  if (Array.isArray(s.type) && s.type.includes('null') && Array.isArray(s.enum))
    if (!s.enum.includes(null)) s.enum = [...s.enum, null]
  return s
}

const stable = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(stable).join(',')}]`
    : isObject(v)
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${stable(v[k])}`)
          .join(',')}}`
      : JSON.stringify(v)

const withoutDescription = ({ description: _, ...rest }: Json) => rest

/**
 * Moves every object schema with a `title` into components/schemas under that title and leaves a
 * $ref in its place (children first, so a titled schema inside another becomes a $ref there too).
 * A use with its own description keeps it beside the $ref; a nullable use becomes anyOf [$ref,
 * null]. Two different schemas with one title are a mistake: the second stays inline and is
 * reported in `conflicts`.
 */
class Hoister {
  readonly conflicts = new Set<string>()
  constructor(readonly components: Json) {}

  hoist(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.hoist(v))
    if (!isObject(value)) return value
    const s: Json = { ...value }
    for (const key of SCHEMA_MAPS)
      if (isObject(s[key]))
        s[key] = Object.fromEntries(
          Object.entries(s[key] as Json).map(([k, v]) => [k, this.hoist(v)]),
        )
    for (const key of SCHEMA_LISTS) if (Array.isArray(s[key])) s[key] = this.hoist(s[key])
    for (const key of SCHEMA_VALUES) if (isObject(s[key])) s[key] = this.hoist(s[key])

    const types = Array.isArray(s.type) ? s.type : [s.type]
    if (typeof s.title !== 'string' || !types.includes('object')) return s
    const nullable = types.includes('null')
    const component: Json = { ...s, type: 'object' }
    const name = s.title.replace(/[^A-Za-z0-9._-]/g, '')
    const existing = this.components[name]
    if (existing === undefined) this.components[name] = component
    else if (
      !isObject(existing) ||
      stable(withoutDescription(existing)) !== stable(withoutDescription(component))
    ) {
      this.conflicts.add(name)
      return s
    }
    const stored = this.components[name] as Json
    const ref: Json = { $ref: `#/components/schemas/${name}` }
    if (s.description && s.description !== stored.description) ref.description = s.description
    return nullable ? { anyOf: [{ $ref: ref.$ref }, { type: 'null' }], ...withoutRef(ref) } : ref
  }
}

const withoutRef = ({ $ref: _, ...rest }: Json) => rest

const isProblemSchema = (s: unknown) =>
  isObject(s) &&
  (s.title === 'Problem' ||
    (isObject(s.properties) &&
      ['type', 'title', 'status', 'request_id'].every((k) => k in (s.properties as Json))))

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' }
// The members of the Problem component itself, read from its schema.
const PROBLEM_MEMBERS = new Set(Object.keys(Problem.properties))

/** A problem body: the Problem component, or Problem plus the members it adds (a `code` ...). */
function problemRef(schema: Json, clean: (s: unknown) => unknown): Json {
  const properties = isObject(schema.properties) ? schema.properties : {}
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  // A member the Problem lacks, or one this body narrows (a const `code`) or makes required.
  const extra = Object.keys(properties).filter(
    (k) =>
      !PROBLEM_MEMBERS.has(k) ||
      (required.has(k) && !(Problem.required as string[] | undefined)?.includes(k)) ||
      (isObject(properties[k]) && ('const' in properties[k] || 'enum' in properties[k])),
  )
  if (extra.length === 0) return PROBLEM_REF
  const extraRequired = [...required].filter((k) => extra.includes(k as string))
  const members = Object.fromEntries(extra.map((k) => [k, clean(properties[k])]))
  return {
    allOf: [
      PROBLEM_REF,
      {
        type: 'object',
        properties: members,
        ...(extraRequired.length ? { required: extraRequired } : {}),
      },
    ],
  }
}

// ---- operationIds ------------------------------------------------------------------------------

const camel = (word: string) =>
  word
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('')
const singular = (word: string) =>
  /ies$/.test(word)
    ? `${word.slice(0, -3)}y`
    : /(ss|us)$/.test(word) || !word.endsWith('s')
      ? word
      : word.slice(0, -1)
const isPlural = (word: string) => word.endsWith('s') && singular(word) !== word
// Path words that name an action on what precedes them rather than a resource or an attribute.
const ACTIONS = new Set([
  'assign',
  'login',
  'logout',
  'logout-all',
  'ping',
  'read',
  'read-all',
  'redeliver',
  'refresh',
  'register',
  'rotate-secret',
  'search',
])
// Path words that only group routes and add nothing to a name.
const NAMESPACES = new Set(['api', 'v1', 'auth'])

/** Elysia's own operationId for a route (postApiV1AuthRegister), to tell it from an override. */
export function elysiaOperationId(method: string, path: string): string {
  const elysiaPath = path.replace(/\{([^}]+)\}/g, ':$1')
  let id = method.toLowerCase()
  if (elysiaPath === '/') return `${id}Index`
  for (const part of elysiaPath.split('/'))
    id += part.includes(':')
      ? `By${part.replace(':', '').replace(/^./, (c) => c.toUpperCase())}`
      : part.charAt(0).toUpperCase() + part.slice(1)
  return id.replace(/\?/g, 'Optional')
}

/**
 * A readable operationId from method and path: listTasks, getTask, createTask, updateTask
 * (PATCH), putTask (PUT beside a PATCH), deleteTask, assignTask, updateTaskStatus,
 * listTaskComments, getCurrentUser ...
 */
export function derivedOperationId(method: string, path: string, hasPatch = false): string {
  // /users/me is an item: the caller's own user.
  const parts = path
    .replace(/\/users\/me(?=\/|$)/, '/current-user/{me}')
    .split('/')
    .filter((p) => p && !NAMESPACES.has(p))
  const name = (words: string[]) => words.map(camel).join('')
  const statics = parts.filter((p) => !p.startsWith('{'))
  const last = parts.at(-1) ?? ''
  const item = last.startsWith('{')
  const context = statics.slice(0, -1).map(singular)
  const lastWord = statics.at(-1) ?? 'root'
  if (item) {
    const noun = name([...context, singular(lastWord)])
    const verb =
      method === 'get'
        ? 'get'
        : method === 'patch'
          ? 'update'
          : method === 'put'
            ? hasPatch
              ? 'put'
              : 'update'
            : method === 'delete'
              ? 'delete'
              : method
    return `${verb}${noun}`
  }
  if (ACTIONS.has(lastWord)) {
    const onItem = parts.at(-2)?.startsWith('{')
    const target = onItem
      ? context
      : context.map((w, i) => (i === context.length - 1 ? `${w}s` : w))
    const base = camel(lastWord)
    return `${base.charAt(0).toLowerCase()}${base.slice(1)}${name(target)}`
  }
  if (isPlural(lastWord)) {
    const verbs: Record<string, string> = { get: 'list', post: 'create', delete: 'delete' }
    const verb = verbs[method] ?? (method === 'patch' || method === 'put' ? 'update' : method)
    const noun = verb === 'create' ? singular(lastWord) : lastWord
    return `${verb}${name([...context, noun])}`
  }
  const verb = method === 'get' ? 'get' : method === 'delete' ? 'delete' : 'update'
  return `${verb}${name([...context, lastWord])}`
}

// ---- the pass over the whole document ----------------------------------------------------------

type PolishResult = { doc: Json; conflicts: string[] }

/**
 * Turns what Elysia generates into a lint-clean OpenAPI 3.1 document, in one pass over every
 * operation, so routes added later come out right without per-route work:
 * schemas in 3.1 form (no `nullable`, integers as integers); titled object schemas hoisted into
 * components/schemas; every error body a $ref to the one Problem component, as
 * application/problem+json; request bodies as JSON (multipart when they carry a file); no
 * content on 204; `security: []` on public operations; a readable unique operationId and a
 * description on each operation; every tag declared.
 */
export function polishOpenApi(input: Json, problemSchema: Json = problemComponent()): PolishResult {
  const doc: Json = structuredClone(input)
  const components: Json = isObject(doc.components) ? doc.components : {}
  doc.components = components
  const schemas: Json = isObject(components.schemas) ? components.schemas : {}
  components.schemas = schemas
  schemas.Problem = problemSchema
  const hoister = new Hoister(schemas)
  const clean = (schema: unknown) => hoister.hoist(normalizeSchema(schema))

  for (const [name, schema] of Object.entries(schemas))
    if (name !== 'Problem') schemas[name] = normalizeSchema(schema)

  const paths = isObject(doc.paths) ? doc.paths : {}
  const usedIds = new Map<string, number>()
  const declaredTags = new Set(
    (Array.isArray(doc.tags) ? doc.tags : []).map((t) => (isObject(t) ? t.name : undefined)),
  )
  const tags = Array.isArray(doc.tags) ? doc.tags : []
  for (const [path, item] of Object.entries(paths)) {
    if (!isObject(item)) continue
    for (const method of HTTP_METHODS) {
      const op = item[method]
      if (!isObject(op)) continue
      polishParameters(op, clean)
      polishRequestBody(op, clean)
      polishResponses(op, clean)
      addCrossCuttingResponses(path, method, op)
      if (!Array.isArray(op.security)) op.security = []
      if (typeof op.operationId !== 'string' || op.operationId === elysiaOperationId(method, path))
        op.operationId = derivedOperationId(method, path, isObject(item.patch))
      const id = op.operationId as string
      const seen = usedIds.get(id) ?? 0
      usedIds.set(id, seen + 1)
      if (seen > 0) op.operationId = `${id}${seen + 1}`
      if (typeof op.description !== 'string' || op.description.trim() === '')
        op.description = describe(op)
      for (const tag of Array.isArray(op.tags) ? op.tags : [])
        if (!declaredTags.has(tag)) {
          declaredTags.add(tag)
          tags.push({ name: tag, description: `${tag} operations` })
        }
    }
  }
  if (tags.length > 0) doc.tags = tags
  return { doc, conflicts: [...hoister.conflicts] }
}

function polishParameters(op: Json, clean: (s: unknown) => unknown) {
  for (const parameter of Array.isArray(op.parameters) ? op.parameters : [])
    if (isObject(parameter) && parameter.schema !== undefined)
      parameter.schema = clean(parameter.schema)
}

const carriesFile = (s: unknown): boolean =>
  isObject(s) &&
  (s.format === 'binary' ||
    s.contentMediaType === 'application/octet-stream' ||
    Object.values(isObject(s.properties) ? s.properties : {}).some(carriesFile) ||
    carriesFile(s.items))

// The server reads JSON, and multipart for uploads; Elysia lists every parser it knows (or, with
// our own parser installed, none), so the media types are set here from the schema.
function polishRequestBody(op: Json, clean: (s: unknown) => unknown) {
  const body = op.requestBody
  if (!isObject(body)) return
  const content = isObject(body.content) ? body.content : {}
  const first = Object.values(content).find(isObject)
  if (!first) {
    delete op.requestBody
    return
  }
  const schema = first.schema
  const type = carriesFile(schema) ? 'multipart/form-data' : 'application/json'
  body.content = { [type]: { schema: clean(schema) } }
  if (body.description === undefined) delete body.description
}

function polishResponses(op: Json, clean: (s: unknown) => unknown) {
  const responses = isObject(op.responses) ? op.responses : {}
  for (const [status, response] of Object.entries(responses)) {
    if (!isObject(response)) continue
    if (response.description === `Response for status ${status}` || !response.description)
      response.description = REASONS[status] ?? `Status ${status}`
    if (status === '204') {
      delete response.content
      continue
    }
    const content = isObject(response.content) ? response.content : {}
    for (const [type, media] of Object.entries(content))
      if (!isObject(media)) delete content[type]
      else if (isObject(media.schema)) {
        if (Number(status) >= 400 && isProblemSchema(media.schema)) {
          delete content[type]
          content['application/problem+json'] = { schema: problemRef(media.schema, clean) }
        } else media.schema = clean(media.schema)
      }
    // t.Void() and the like: Elysia writes `{ type: 'void' }` where the media types belong.
    if (Object.keys(content).length === 0) delete response.content
    if (isObject(response.headers))
      for (const header of Object.values(response.headers))
        if (isObject(header) && header.schema !== undefined) header.schema = clean(header.schema)
  }
}

const RATE_LIMIT_HEADERS: Json = {
  'Retry-After': {
    description: 'Seconds until a request may succeed',
    schema: { type: 'integer' },
  },
  RateLimit: {
    description: 'Remaining quota per policy (draft-ietf-httpapi-ratelimit-headers)',
    schema: { type: 'string' },
  },
  'RateLimit-Policy': { description: 'The policies counted', schema: { type: 'string' } },
}

/**
 * Answers every route can give whatever its own code does: 429 from the rate limits on /api/,
 * 503 from the request deadline or an unavailable database, and 304 to a conditional GET that
 * needs a token (see src/modules/ratelimit, src/deadline.ts, src/representation.ts).
 */
function addCrossCuttingResponses(path: string, method: string, op: Json) {
  const responses: Json = isObject(op.responses) ? op.responses : {}
  op.responses = responses
  const problem = (description: string, headers?: Json) => ({
    description,
    ...(headers ? { headers } : {}),
    content: { 'application/problem+json': { schema: PROBLEM_REF } },
  })
  if (path.startsWith('/api/') && !responses['429'])
    responses['429'] = problem('Rate limited; see Retry-After', RATE_LIMIT_HEADERS)
  if (!responses['503'])
    responses['503'] = problem('Past the request deadline, or the database is unavailable; retry', {
      'Retry-After': RATE_LIMIT_HEADERS['Retry-After'],
    })
  const secured = Array.isArray(op.security) && op.security.length > 0
  // An API token may be refused on any route it can be sent to (TOKEN_ROUTES, project_ids).
  const byToken = secured && (op.security as unknown[]).some((r) => isObject(r) && 'apiToken' in r)
  if (byToken) {
    const refusal =
      'an API token without the scope, outside its `project_ids`, or on a route closed to tokens'
    const forbidden = responses['403']
    if (!isObject(forbidden)) responses['403'] = problem(`Forbidden: ${refusal}`)
    else if (
      typeof forbidden.description === 'string' &&
      !forbidden.description.includes('API token')
    )
      forbidden.description = `${forbidden.description}; or ${refusal}`
  }
  if (
    method === 'get' &&
    secured &&
    path.startsWith('/api/') &&
    responses['200'] &&
    !responses['304']
  )
    responses['304'] = { description: 'Not modified: the `If-None-Match` ETag is current' }
}

function describe(op: Json): string {
  const summary = typeof op.summary === 'string' ? op.summary.trim() : ''
  const sentence = summary ? `${summary.replace(/[.]$/, '')}.` : ''
  const secured = Array.isArray(op.security) && op.security.length > 0
  const auth = secured
    ? 'Needs `Authorization: Bearer <access_token>`.'
    : 'Public: no authentication.'
  return `${sentence} ${auth}`.trim()
}

function problemComponent(): Json {
  const schema = normalizeSchema(JSON.parse(JSON.stringify(Problem))) as Json
  return { ...schema, title: 'Problem' }
}

// ---- serving ------------------------------------------------------------------------------------

/** The request's own origin, for `servers`: the document works wherever the server is reached. */
function originOf(request: Request): string {
  const url = new URL(request.url)
  const proto = request.headers.get('x-forwarded-proto')?.split(',')[0]?.trim()
  const scheme = proto === 'https' || proto === 'http' ? proto : url.protocol.slice(0, -1)
  return `${scheme}://${url.host}`
}

/** Builds the full document from every route of the app `plugin` ends up in. */
function generate(plugin: AnyElysia, documentation: Documentation): Json {
  // Our JSON body parser is a function; Elysia then lists no media type at all and drops the
  // body schema. Without `parse` it lists every type; polishRequestBody picks the real ones.
  const app = plugin as unknown as {
    getGlobalRoutes(): { hooks?: Json }[]
    getGlobalDefinitions?(): unknown
  }
  const view = {
    getGlobalRoutes: () =>
      app
        .getGlobalRoutes()
        .map((route) => ({ ...route, hooks: route.hooks && { ...route.hooks, parse: undefined } })),
    getGlobalDefinitions: () => app.getGlobalDefinitions?.(),
  } as unknown as AnyElysia
  const { paths, components } = toOpenAPISchema(view, undefined, undefined, undefined, '3.1.2')
  const documented = isObject(documentation.components) ? documentation.components : {}
  const generated: Json = {
    openapi: '3.1.2',
    ...documentation,
    info: {
      license: { name: pkg.license, identifier: pkg.license },
      contact: { name: 'taskapi maintainers' },
      ...documentation.info,
    },
    paths: { ...paths },
    components: {
      ...documented,
      schemas: { ...components.schemas, ...(documented.schemas as Json | undefined) },
    },
  }
  return polishOpenApi(generated).doc
}

/**
 * Interactive docs at /docs (the pinned Scalar bundle, served from this process) and the
 * OpenAPI 3.1 document at /docs/json, generated once from the routes on first request.
 */
export function apiDocs(documentation: Documentation) {
  let cached: Json | undefined
  const plugin = new Elysia({ name: 'api-docs' })
  return plugin
    .get(
      '/docs/json',
      ({ request }) => {
        cached ??= generate(plugin, documentation)
        return { ...cached, servers: [{ url: originOf(request), description: 'This server' }] }
      },
      { detail: { hide: true } },
    )
    .use(docsUi({ title: String(documentation.info.title ?? 'API'), specPath: '/docs/json' }))
}
