import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer()
}, 60_000)
afterAll(() => server.close(), 30_000)

type Operation = {
  summary?: string
  tags?: string[]
  security?: unknown[]
  responses?: Record<string, unknown>
}

describe('GET /docs/json', () => {
  it('is an OpenAPI 3 document with bearer auth declared', async () => {
    const res = await server.request('GET', '/docs/json')
    expect(res.status).toBe(200)
    expect(res.body.openapi).toMatch(/^3\./)
    expect(res.body.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    })
  })

  it('passes an OpenAPI schema validator', async () => {
    const doc = (await server.request('GET', '/docs/json')).body
    const result = await new Validator().validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
  })

  it('describes errors as problem+json and query numbers as integers', async () => {
    const doc = (await server.request('GET', '/docs/json')).body
    const register = doc.paths['/api/v1/auth/register'].post
    expect(Object.keys(register.responses['409'].content)).toEqual(['application/problem+json'])
    expect(Object.keys(register.responses['201'].content)).toEqual(['application/json'])
    const limit = doc.paths['/api/v1/users'].get.parameters.find(
      (p: { name: string }) => p.name === 'limit',
    )
    expect(limit.schema).toMatchObject({ type: 'integer', maximum: 100 })
  })

  it('documents every route with a summary, a tag and its error responses', async () => {
    const doc = (await server.request('GET', '/docs/json')).body
    const expected = [
      'post /api/v1/auth/register',
      'post /api/v1/auth/login',
      'post /api/v1/auth/refresh',
      'post /api/v1/auth/logout',
      'post /api/v1/auth/logout-all',
      'get /api/v1/auth/sessions',
      'delete /api/v1/auth/sessions/{id}',
      'get /api/v1/users/me',
      'patch /api/v1/users/me',
      'put /api/v1/users/me',
      'put /api/v1/users/me/password',
      'get /api/v1/users',
      'get /api/v1/users/{id}',
      'get /health',
    ]
    const operations = new Map<string, Operation>()
    for (const [path, item] of Object.entries(
      doc.paths as Record<string, Record<string, Operation>>,
    ))
      for (const [method, op] of Object.entries(item)) operations.set(`${method} ${path}`, op)
    for (const key of expected) {
      const op = operations.get(key)
      if (!op) throw new Error(`missing from the OpenAPI document: ${key}`)
      expect(op.summary?.length).toBeGreaterThan(5)
      expect(op.tags?.length).toBeGreaterThan(0)
      const statuses = Object.keys(op.responses ?? {})
      expect(statuses.some((s) => s.startsWith('2'))).toBe(true)
      if (key !== 'get /health') expect(statuses.some((s) => s.startsWith('4'))).toBe(true)
    }
    const secured = [...operations].filter(([, op]) => op.security?.length).map(([k]) => k)
    expect(secured).toContain('get /api/v1/users/me')
    expect(secured).not.toContain('post /api/v1/auth/login')
  })

  it('serves interactive docs at /docs', async () => {
    const res = await fetch(`${server.url}/docs`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
  })
})

describe('GET /health', () => {
  it('reports healthy with the database up', async () => {
    const res = await server.request('GET', '/health')
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ status: 'healthy', services: { database: 'healthy' } })
    expect(res.body.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(new Date(res.body.timestamp).toISOString()).toBe(res.body.timestamp)
  })

  it('answers 503 unhealthy when the database is unreachable', async () => {
    const other = await startServer()
    try {
      await other.db.sql.end({ timeout: 1 })
      const res = await other.request('GET', '/health')
      expect(res.status).toBe(503)
      expect(res.body).toMatchObject({ status: 'unhealthy', services: { database: 'unhealthy' } })
    } finally {
      await other.close()
    }
  })
})
