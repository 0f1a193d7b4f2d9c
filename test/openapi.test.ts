import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import {
  derivedOperationId,
  elysiaOperationId,
  normalizeSchema,
  polishOpenApi,
} from '../src/openapi'
import { startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

type Json = Record<string, unknown>
type Operation = Json & {
  operationId?: string
  description?: string
  security?: Record<string, string[]>[]
  requestBody?: { content: Record<string, { schema: Json }> }
  responses: Record<string, { description: string; content?: Record<string, { schema: Json }> }>
}

let server: TestServer
let doc: Json & { paths: Record<string, Record<string, Operation>>; components: Json }
beforeAll(async () => {
  server = await startServer()
  doc = (await server.request('GET', '/docs/json')).body
}, 60_000)
afterAll(() => server.close(), 30_000)

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ key: `${method} ${path}`, method, path, op })),
  )

/** Every object inside `value`, with the JSON pointer-ish path that leads to it. */
function* walk(value: unknown, at = '#'): Generator<[string, Json]> {
  if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* walk(v, `${at}/${i}`)
  else if (typeof value === 'object' && value !== null) {
    yield [at, value as Json]
    for (const [k, v] of Object.entries(value)) yield* walk(v, `${at}/${k}`)
  }
}

describe('the served OpenAPI 3.1 document', () => {
  it('declares 3.1, servers, a license and a contact', () => {
    expect(doc.openapi).toMatch(/^3\.1\./)
    expect(doc.servers).toEqual([{ url: server.url, description: 'This server' }])
    expect(doc.info).toMatchObject({
      license: { name: 'MIT', identifier: 'MIT' },
      contact: { name: expect.any(String) },
    })
  })

  it('gives every operation a unique, readable operationId and a description', () => {
    const ids = operations().map(({ op }) => op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const { key, op } of operations()) {
      expect(`${key}: ${op.operationId}`).toMatch(/: [a-z][A-Za-z0-9]+$/)
      // Elysia's own ids spell the whole path (postApiV1AuthRegister).
      expect(op.operationId).not.toContain('ApiV1')
      expect(`${key}: ${(op.description ?? '').length > 10}`).toBe(`${key}: true`)
    }
    const id = (key: string) => operations().find((o) => o.key === key)?.op.operationId
    expect(id('get /api/v1/users')).toBe('listUsers')
    expect(id('get /api/v1/users/{id}')).toBe('getUser')
    expect(id('get /api/v1/users/me')).toBe('getCurrentUser')
    expect(id('post /api/v1/auth/login')).toBe('login')
    expect(id('delete /api/v1/auth/sessions/{id}')).toBe('deleteSession')
  })

  it('marks public operations with security: [] and the rest with the bearer schemes', () => {
    for (const { key, op } of operations()) {
      expect(`${key}: ${Array.isArray(op.security)}`).toBe(`${key}: true`)
      // A session's access token, or an API token (which TOKEN_ROUTES may still refuse with 403).
      for (const requirement of op.security ?? [])
        expect(['bearerAuth', 'apiToken']).toContain(Object.keys(requirement).join())
    }
    const security = (key: string) => operations().find((o) => o.key === key)?.op.security
    expect(security('post /api/v1/auth/login')).toEqual([])
    expect(security('get /health')).toEqual([])
    expect(security('get /api/v1/users/me')).toEqual([{ bearerAuth: [] }, { apiToken: [] }])
  })

  it('documents the 403 an API token can get on every operation it may be sent to', () => {
    let count = 0
    for (const { key, op } of operations()) {
      const byToken = (op.security ?? []).some((r: Json) => 'apiToken' in r)
      if (!byToken) continue
      count += 1
      const forbidden = op.responses?.['403']
      expect(`${key}: ${forbidden?.description ?? 'no 403'}`).toContain('API token')
      expect(forbidden?.content?.['application/problem+json']?.schema).toEqual({
        $ref: '#/components/schemas/Problem',
      })
    }
    expect(count).toBeGreaterThan(50)
  })

  it('has no OpenAPI 3.0 `nullable` and no coercion helper (a string with format integer)', () => {
    for (const [at, node] of walk(doc)) {
      expect(`${at}: ${'nullable' in node}`).toBe(`${at}: false`)
      const helper = node.type === 'string' && ['integer', 'numeric'].includes(String(node.format))
      expect(`${at}: ${helper}`).toBe(`${at}: false`)
    }
  })

  it('writes nullable fields as 3.1 type lists and response integers as integers', () => {
    const schemas = doc.components.schemas as Record<string, { properties: Record<string, Json> }>
    expect(schemas.User?.properties.first_name).toEqual({ type: ['string', 'null'] })
    expect(schemas.AuthTokens?.properties.expires_in).toMatchObject({ type: 'integer' })
    for (const field of ['page', 'limit', 'total', 'pages'])
      expect(schemas.Pagination?.properties[field]).toMatchObject({ type: 'integer' })
  })

  it('hoists titled schemas into components and leaves no inline copy', () => {
    const names = Object.keys(doc.components.schemas as Json)
    for (const name of ['Problem', 'User', 'PublicProfile', 'AuthTokens', 'Session', 'Pagination'])
      expect(names).toContain(name)
    for (const [at, node] of walk(doc.paths)) {
      const inlineTitled = typeof node.title === 'string' && node.type !== undefined
      expect(`${at}: ${inlineTitled}`).toBe(`${at}: false`)
    }
    const me = doc.paths['/api/v1/users/me']?.get?.responses['200']?.content?.['application/json']
    expect(me?.schema).toEqual({ $ref: '#/components/schemas/User' })
  })

  it('answers every error with the one Problem component as application/problem+json', () => {
    let count = 0
    for (const { key, op } of operations())
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400 || key === 'get /health') continue
        count += 1
        expect(`${key} ${status}: ${Object.keys(response.content ?? {})}`).toBe(
          `${key} ${status}: application/problem+json`,
        )
        const schema = response.content?.['application/problem+json']?.schema as Json
        // The component itself, or the component plus members it adds (a `code` ...).
        const ref = Array.isArray(schema.allOf) ? schema.allOf[0] : schema
        expect(`${key} ${status}: ${JSON.stringify(ref)}`).toBe(
          `${key} ${status}: {"$ref":"#/components/schemas/Problem"}`,
        )
      }
    expect(count).toBeGreaterThan(20)
    // /health's 503 is its own body, not a problem.
    const health = doc.paths['/health']?.get?.responses['503']?.content
    expect(health).toEqual({
      'application/json': { schema: { $ref: '#/components/schemas/Health' } },
    })
  })

  it('describes request bodies as JSON with their schema', () => {
    const body = doc.paths['/api/v1/auth/register']?.post?.requestBody
    expect(Object.keys(body?.content ?? {})).toEqual(['application/json'])
    expect(body?.content['application/json']?.schema).toMatchObject({
      type: 'object',
      required: ['email', 'username', 'password'],
    })
  })

  it('documents 429 on every /api/ operation, 503 on all, and 304 on authenticated GETs', () => {
    for (const { key, method, path, op } of operations()) {
      if (path.startsWith('/api/')) expect([key, Boolean(op.responses['429'])]).toEqual([key, true])
      expect([key, Boolean(op.responses['503'])]).toEqual([key, true])
      const secured = (op.security?.length ?? 0) > 0
      if (method === 'get' && secured && path.startsWith('/api/') && op.responses['200'])
        expect([key, Boolean(op.responses['304'])]).toEqual([key, true])
    }
    const limited = doc.paths['/api/v1/auth/login']?.post?.responses['429'] as Json
    expect(Object.keys(limited.headers as Json)).toContain('Retry-After')
  })

  it('has no 204 content and declares every tag it uses', () => {
    const declared = (doc.tags as { name: string }[]).map((t) => t.name)
    for (const { key, op } of operations()) {
      expect(`${key}: ${op.responses['204']?.content === undefined}`).toBe(`${key}: true`)
      for (const tag of (op.tags as string[]) ?? []) expect(declared).toContain(tag)
    }
  })
})

describe('polishOpenApi', () => {
  const operation = (schema: Json, extra: Json = {}) => ({
    openapi: '3.1.2',
    info: { title: 't', version: '1' },
    paths: {
      '/api/v1/things/{id}': {
        get: {
          operationId: elysiaOperationId('get', '/api/v1/things/{id}'),
          summary: 'A thing',
          responses: { '200': { content: { 'application/json': { schema } } } },
          ...extra,
        },
      },
    },
  })
  const first = (doc: Json) =>
    (doc.paths as Record<string, Record<string, Operation>>)['/api/v1/things/{id}']
      ?.get as Operation

  it('turns a titled nullable object into anyOf [$ref, null] and hoists it once', () => {
    const thing = { title: 'Thing', type: 'object', properties: { a: { type: 'string' } } }
    const { doc, conflicts } = polishOpenApi(
      operation({
        type: 'object',
        properties: {
          one: { ...thing, nullable: true },
          two: thing,
          many: { type: 'array', items: thing },
        },
      }),
    )
    expect(conflicts).toEqual([])
    const schema = first(doc).responses['200']?.content?.['application/json']?.schema as Json
    expect(schema.properties).toEqual({
      one: { anyOf: [{ $ref: '#/components/schemas/Thing' }, { type: 'null' }] },
      two: { $ref: '#/components/schemas/Thing' },
      many: { type: 'array', items: { $ref: '#/components/schemas/Thing' } },
    })
    expect((doc.components as { schemas: Json }).schemas.Thing).toEqual(thing)
  })

  it('reports two different schemas under one title and leaves the second inline', () => {
    const a = { title: 'Thing', type: 'object', properties: { a: { type: 'string' } } }
    const b = { title: 'Thing', type: 'object', properties: { b: { type: 'string' } } }
    const { conflicts } = polishOpenApi(operation({ type: 'object', properties: { a, b } }))
    expect(conflicts).toEqual(['Thing'])
  })

  it('keeps an operationId given in detail and derives the rest', () => {
    const { doc } = polishOpenApi(operation({ type: 'string' }, { operationId: 'fetchThing' }))
    expect(first(doc).operationId).toBe('fetchThing')
    const derived = polishOpenApi(operation({ type: 'string' })).doc
    expect(first(derived).operationId).toBe('getThing')
  })

  it('keeps the members a problem adds beside the Problem component, and drops void content', () => {
    const replayGap = {
      type: 'object',
      required: ['type', 'title', 'status', 'request_id', 'code'],
      properties: {
        type: { type: 'string' },
        title: { type: 'string' },
        status: { type: 'integer' },
        request_id: { type: 'string' },
        code: { const: 'replay_gap', type: 'string' },
      },
    }
    const input = operation({ type: 'string' })
    const op = input.paths['/api/v1/things/{id}'].get as unknown as Operation
    op.responses['410'] = {
      description: 'Response for status 410',
      content: { 'application/json': { schema: replayGap } },
    }
    op.responses['304'] = { description: 'x', content: { type: 'void' } as never }
    const out = first(polishOpenApi(input).doc)
    expect(out.responses['410']).toEqual({
      description: 'Gone',
      content: {
        'application/problem+json': {
          schema: {
            allOf: [
              { $ref: '#/components/schemas/Problem' },
              {
                type: 'object',
                properties: { code: { const: 'replay_gap', type: 'string' } },
                required: ['code'],
              },
            ],
          },
        },
      },
    })
    expect(out.responses['304']).toEqual({ description: 'x' })
  })

  it('writes 3.1 nullables and collapses coercion unions', () => {
    expect(normalizeSchema({ type: 'string', nullable: true })).toEqual({
      type: ['string', 'null'],
    })
    expect(normalizeSchema({ type: 'string', enum: ['a', 'b'], nullable: true })).toEqual({
      type: ['string', 'null'],
      enum: ['a', 'b', null],
    })
    expect(
      normalizeSchema({
        description: 'n',
        anyOf: [{ type: 'string', format: 'integer', default: 0 }, { type: 'integer' }],
      }),
    ).toEqual({ description: 'n', type: 'integer' })
    const date = [
      { type: 'string', format: 'date-time' },
      { type: 'string', format: 'date' },
      { type: 'number' },
    ]
    expect(normalizeSchema({ anyOf: date })).toEqual({ type: 'string', format: 'date-time' })
  })

  it('derives the operationIds client generators name methods after', () => {
    const cases: [string, string, string, boolean?][] = [
      ['get', '/api/v1/tasks', 'listTasks'],
      ['post', '/api/v1/tasks', 'createTask'],
      ['get', '/api/v1/tasks/{id}', 'getTask'],
      ['patch', '/api/v1/tasks/{id}', 'updateTask', true],
      ['put', '/api/v1/tasks/{id}', 'putTask', true],
      ['delete', '/api/v1/tasks/{id}', 'deleteTask'],
      ['put', '/api/v1/tasks/{id}/assign', 'assignTask'],
      ['put', '/api/v1/tasks/{id}/status', 'updateTaskStatus'],
      ['get', '/api/v1/tasks/search', 'searchTasks'],
      ['get', '/api/v1/tasks/{id}/comments', 'listTaskComments'],
      ['post', '/api/v1/tasks/{id}/comments', 'createTaskComment'],
      ['get', '/api/v1/projects/{id}/members', 'listProjectMembers'],
      ['get', '/api/v1/notifications/unread-count', 'getNotificationUnreadCount'],
      ['put', '/api/v1/notifications/read-all', 'readAllNotifications'],
      ['put', '/api/v1/users/me/password', 'updateCurrentUserPassword'],
    ]
    for (const [method, path, id, hasPatch] of cases)
      expect(`${method} ${path} ${derivedOperationId(method, path, hasPatch)}`).toBe(
        `${method} ${path} ${id}`,
      )
  })
})
