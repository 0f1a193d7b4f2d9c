import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

describe('security and cache headers', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer()
  }, 60_000)
  afterAll(() => server.close(), 60_000)

  const expectBasics = (headers: Headers) => {
    expect(headers.get('x-content-type-options')).toBe('nosniff')
    expect(headers.get('referrer-policy')).toBe('no-referrer')
  }

  it('answers that carry tokens are no-store', async () => {
    const user = await registerUser(server)
    const login = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    expect(login.status).toBe(200)
    expect(login.headers.get('cache-control')).toBe('no-store')
    expectBasics(login.headers)
    const refreshed = await server.request('POST', '/api/v1/auth/refresh', {
      body: { refresh_token: login.body.refresh_token },
    })
    expect(refreshed.status).toBe(200)
    expect(refreshed.headers.get('cache-control')).toBe('no-store')
    const sessions = await server.request('GET', '/api/v1/auth/sessions', { token: user.access })
    expect(sessions.status).toBe(200)
    expect(sessions.headers.get('cache-control')).toBe('no-store')
  })

  it('other authenticated answers are private, no-cache and vary by Authorization', async () => {
    const user = await registerUser(server)
    const me = await server.request('GET', '/api/v1/users/me', { token: user.access })
    expect(me.status).toBe(200)
    expect(me.headers.get('cache-control')).toBe('private, no-cache')
    expect(me.headers.get('vary')).toContain('Authorization')
    expectBasics(me.headers)
  })

  it('anonymous answers, errors and early refusals carry the headers too', async () => {
    const anonymous = await server.request('GET', '/api/v1/users/me')
    expectProblemShape(anonymous, 401)
    expect(anonymous.headers.get('cache-control')).toBe('no-store')
    expectBasics(anonymous.headers)
    const unsupported = await server.request('POST', '/api/v1/projects', {
      body: 'name=x',
      headers: { 'content-type': 'text/plain' },
    })
    expectProblemShape(unsupported, 415)
    expectBasics(unsupported.headers)
    const health = await server.request('GET', '/health')
    expect(health.headers.get('cache-control')).toBe('no-store')
    expectBasics(health.headers)
  })

  it('the docs page has a strict Content-Security-Policy', async () => {
    const docs = await server.request('GET', '/docs')
    expect(docs.status).toBe(200)
    const csp = docs.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expectBasics(docs.headers)
  })
})

describe('DOCS_ENABLED=false', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer({ DOCS_ENABLED: 'false' })
  }, 60_000)
  afterAll(() => server.close(), 60_000)

  it('serves no page, document or asset under /docs', async () => {
    for (const path of ['/docs', '/docs/json', '/docs/asyncapi.json', '/docs/assets/init.js']) {
      const res = await server.request('GET', path)
      expectProblemShape(res, 404)
      expectBasics(res.headers)
    }
    expect((await server.request('GET', '/health')).status).toBe(200)
  })

  const expectBasics = (headers: Headers) =>
    expect(headers.get('x-content-type-options')).toBe('nosniff')
})

describe('with a CORS allow-list', () => {
  it('Vary names both Origin and Authorization', async () => {
    const server = await startServer({ CORS_ORIGINS: 'https://app.example' })
    try {
      const user = await registerUser(server)
      const me = await server.request('GET', '/api/v1/users/me', {
        token: user.access,
        headers: { origin: 'https://app.example' },
      })
      expect(me.status).toBe(200)
      expect(me.headers.get('vary')).toBe('Origin, Authorization')
      expect(me.headers.get('access-control-expose-headers')).toContain('RateLimit-Policy')
    } finally {
      await server.close()
    }
  }, 30_000)
})
