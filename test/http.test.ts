import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { Elysia, t } from 'elysia'
import { httpBasics } from '../src/http'
import { createLogger } from '../src/logger'
import {
  captureLogger,
  eventually,
  expectProblemShape,
  registerUser,
  startServer,
  type TestServer,
  testConfig,
} from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
const captured = captureLogger()
beforeAll(async () => {
  server = await startServer(
    { MAX_JSON_BODY_BYTES: '4096', MAX_BODY_BYTES: '65536' },
    captured.logger,
  )
}, 60_000)
afterAll(() => server.close(), 30_000)

const PROBLEM_KEYS = ['detail', 'request_id', 'status', 'title', 'type']

describe('errors', () => {
  it('answers 404 problem+json for an unknown route', async () => {
    const res = await server.request('GET', '/api/v1/no-such-thing')
    expectProblemShape(res, 404)
    expect(res.body.type).toBe('about:blank')
  })

  it('answers 400 for malformed JSON and creates nothing', async () => {
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: '{"email": "broken@example.com", "username": "broken", "password": ',
    })
    expectProblemShape(res, 400)
    const login = await server.request('POST', '/api/v1/auth/login', {
      body: { email: 'broken@example.com', password: 'whatever' },
    })
    expect(login.status).toBe(401)
  })

  it('answers 415 for a body that is neither JSON nor multipart', async () => {
    const res = await server.request('POST', '/api/v1/auth/login', {
      body: 'email=a@b.c&password=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expectProblemShape(res, 415)
  })

  it('answers 413 for a JSON body over MAX_JSON_BODY_BYTES', async () => {
    const res = await server.request('POST', '/api/v1/auth/login', {
      body: { email: 'a@example.com', password: 'x'.repeat(5000) },
    })
    expectProblemShape(res, 413)
  })

  it('refuses a body over MAX_BODY_BYTES before reading it', async () => {
    const res = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: new Uint8Array(100_000),
    })
    expect(res.status).toBe(413)
  })

  // fetch sends a ReadableStream body chunked, without Content-Length.
  const postChunked = (contentType: string, chunks: Uint8Array[]) =>
    fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk)
          controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)

  it('refuses a chunked body (no Content-Length) over MAX_BODY_BYTES', async () => {
    const chunk = new Uint8Array(10_000).fill(0x61)
    const res = await postChunked('multipart/form-data; boundary=x', Array(20).fill(chunk))
    expect(res.status).toBe(413)
  })

  it('answers 413 for a chunked JSON body over MAX_JSON_BODY_BYTES', async () => {
    const json = `{"email":"a@example.com","password":"${'x'.repeat(6000)}"}`
    const res = await postChunked('application/json', [new TextEncoder().encode(json)])
    expect(res.status).toBe(413)
    expect(res.headers.get('content-type')).toStartWith('application/problem+json')
  })

  it('parses application/*+json bodies and answers 422 for an empty one', async () => {
    const user = await registerUser(server)
    const patched = await server.request('PATCH', '/api/v1/users/me', {
      token: user.access,
      body: { first_name: 'Merge' },
      headers: { 'content-type': 'application/merge-patch+json' },
    })
    expect(patched.status).toBe(200)
    expect(patched.body.first_name).toBe('Merge')
    const empty = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '0' },
    })
    expect(empty.status).toBe(422)
  })

  it('answers 422, not 500, for text PostgreSQL cannot store (NUL bytes), changing nothing', async () => {
    const user = await registerUser(server)
    const search = await server.request('GET', '/api/v1/users?search=%00', { token: user.access })
    expectProblemShape(search, 422)
    const patch = await server.request('PATCH', '/api/v1/users/me', {
      token: user.access,
      body: { first_name: 'a\u0000b' },
    })
    expectProblemShape(patch, 422)
    const me = await server.request('GET', '/api/v1/users/me', { token: user.access })
    expect(me.body.first_name).toBeNull()
  })

  it('answers 422 with one entry per invalid field and a readable detail', async () => {
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: { email: 'x@example.com', username: 'ok_name', password: 123 },
    })
    expectProblemShape(res, 422)
    expect(res.body.errors).toEqual([{ path: '/password', message: expect.any(String) }])
    expect(res.body.detail).toContain('password')
  })

  it('answers a bare 500 for an internal failure and logs the cause with the request id', async () => {
    const user = await registerUser(server)
    await server.db.sql`alter table users rename column avatar_url to avatar_url_gone`
    try {
      const res = await server.request('GET', '/api/v1/users/me', { token: user.access })
      expectProblemShape(res, 500)
      expect(Object.keys(res.body).sort()).toEqual(PROBLEM_KEYS)
      expect(res.text).not.toMatch(/avatar|column|select|postgres|at \/|\.ts:|Error/)
      const logged = await eventually(() =>
        captured.lines.find((l) => l.level === 'error' && l.request_id === res.body.request_id),
      )
      expect(String(logged?.error)).toContain('avatar_url')
    } finally {
      await server.db.sql`alter table users rename column avatar_url_gone to avatar_url`
    }
  })
})

describe('the error chokepoint', () => {
  // No route of the API has such a query today (the task list checks its tags itself): a bounded
  // query array that Elysia splits from a comma list fails as TypeBox's TransformDecodeCheckError,
  // which carries no `all` list of errors; the chokepoint once threw on it (Bun's HTML 500).
  const app = new Elysia()
    .use(httpBasics(testConfig(), createLogger('silent')))
    .get('/x', () => 'ok', {
      query: t.Object({ tags: t.Optional(t.Array(t.String({ maxLength: 2 }), { maxItems: 2 })) }),
    })
  const get = async (query: string) => {
    const res = await app.handle(new Request(`http://localhost/x?${query}`))
    const text = await res.text()
    const type = res.headers.get('content-type')
    return { status: res.status, type, body: type?.includes('json') ? JSON.parse(text) : text }
  }

  it('answers a bounded query array split from a comma list with a 422 naming the field', async () => {
    const tooMany = await get('tags=a,b,c')
    expect(tooMany.status).toBe(422)
    expect(tooMany.type).toStartWith('application/problem+json')
    expect(tooMany.body.errors).toEqual([
      { path: '/tags', message: 'expected array length to be less or equal to 2' },
    ])
    const tooLong = await get('tags=abc')
    expect(tooLong.status).toBe(422)
    expect(tooLong.body.errors).toEqual([
      { path: '/tags/0', message: 'expected string length less or equal to 2' },
    ])
    expect(await get('tags=a,b')).toMatchObject({ status: 200, body: 'ok' })
  })
})

describe('request basics', () => {
  it('echoes a sane X-Request-Id and replaces one that is not', async () => {
    const sane = await server.request('GET', '/health', {
      headers: { 'x-request-id': 'abc-123.x' },
    })
    expect(sane.headers.get('x-request-id')).toBe('abc-123.x')
    for (const bad of ['x'.repeat(200), 'has spaces <script>']) {
      const res = await server.request('GET', '/health', { headers: { 'x-request-id': bad } })
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f-]{21}$/)
    }
  })

  it('puts X-Request-Id on successes and on errors alike', async () => {
    const ok = await server.request('GET', '/health')
    const missing = await server.request('GET', '/nope')
    expect(ok.headers.get('x-request-id')).toBeTruthy()
    expect(missing.headers.get('x-request-id')).toBe(missing.body.request_id)
  })

  it('logs one line per request with method, path without query, status, time and user', async () => {
    const user = await registerUser(server)
    const res = await server.request('GET', '/api/v1/users?search=secret-term', {
      token: user.access,
    })
    const line = await eventually(() =>
      captured.lines.find(
        (l) => l.msg === 'request' && l.request_id === res.headers.get('x-request-id'),
      ),
    )
    expect(line).toMatchObject({
      method: 'GET',
      path: '/api/v1/users',
      status: 200,
      user_id: user.id,
    })
    expect(typeof line?.ms).toBe('number')
    expect(JSON.stringify(captured.lines)).not.toContain('secret-term')
    const failed = await server.request('GET', '/nope')
    const failedLine = await eventually(() =>
      captured.lines.find((l) => l.msg === 'request' && l.request_id === failed.body.request_id),
    )
    expect(failedLine?.status).toBe(404)
  })

  it('answers a CORS preflight for the API', async () => {
    const res = await fetch(`${server.url}/api/v1/users/me`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'PATCH',
        'access-control-request-headers': 'authorization, content-type',
      },
    })
    expect(res.status).toBe(204)
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    expect(res.headers.get('access-control-allow-methods')).toContain('PATCH')
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain(
      'authorization',
    )
    expect(res.headers.get('access-control-allow-credentials')).toBeNull()
  })

  it('puts CORS headers and X-Request-Id on early errors and preflights', async () => {
    const origin = { origin: 'https://app.example.com' }
    const unsupported = await server.request('POST', '/api/v1/auth/login', {
      body: 'x=1',
      headers: { ...origin, 'content-type': 'text/plain' },
    })
    expectProblemShape(unsupported, 415)
    expect(unsupported.headers.get('access-control-allow-origin')).toBe('*')
    const preflight = await fetch(`${server.url}/api/v1/users/me`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'GET' },
    })
    expect(preflight.headers.get('x-request-id')).toBeTruthy()
  })

  it('with an origin list, allows listed origins only and varies on Origin', async () => {
    const listed = await startServer({ CORS_ORIGINS: 'https://app.example.com,https://b.example' })
    try {
      const ok = await fetch(`${listed.url}/health`, { headers: { origin: 'https://b.example' } })
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://b.example')
      expect(ok.headers.get('access-control-expose-headers')).toContain('X-Request-Id')
      expect(ok.headers.get('vary')).toBe('Origin')
      const other = await fetch(`${listed.url}/health`, {
        headers: { origin: 'https://evil.example' },
      })
      expect(other.status).toBe(200)
      expect(other.headers.get('access-control-allow-origin')).toBeNull()
    } finally {
      await listed.close()
    }
  })
})
