import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { captureLogger, eventually, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
const captured = captureLogger()
beforeAll(async () => {
  server = await startServer({ MAX_JSON_BODY_BYTES: '4096' }, captured.logger)
}, 60_000)
afterAll(() => server.close(), 30_000)

/** Every request log line with this request id, once the first one has appeared. */
async function requestLines(id: string | null) {
  await eventually(() => captured.lines.find((l) => l.msg === 'request' && l.request_id === id))
  await Bun.sleep(50)
  return captured.lines.filter((l) => l.msg === 'request' && l.request_id === id)
}

describe('the request log', () => {
  it('logs a body refused before routing (415) once, with its status, address and agent', async () => {
    const res = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'user-agent': 'curl/8.5.0' },
      body: 'hello',
    })
    expect(res.status).toBe(415)
    const lines = await requestLines(res.headers.get('x-request-id'))
    expect(lines).toMatchObject([
      {
        method: 'POST',
        path: '/api/v1/auth/login',
        status: 415,
        ip: '127.0.0.1',
        user_agent: 'curl/8.5.0',
      },
    ])
  })

  it('logs a JSON body over the limit by its Content-Length (413) once', async () => {
    const res = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(8_000) }),
    })
    expect(res.status).toBe(413)
    expect(await requestLines(res.headers.get('x-request-id'))).toMatchObject([{ status: 413 }])
  })

  it('logs a CORS preflight once, as 204', async () => {
    const res = await fetch(`${server.url}/api/v1/users/me`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'GET',
        'user-agent': 'Mozilla/5.0 (test)',
      },
    })
    expect(res.status).toBe(204)
    const lines = await requestLines(res.headers.get('x-request-id'))
    expect(lines).toMatchObject([
      {
        method: 'OPTIONS',
        path: '/api/v1/users/me',
        status: 204,
        ip: '127.0.0.1',
        user_agent: 'Mozilla/5.0 (test)',
      },
    ])
  })

  it('logs a routed request once', async () => {
    const res = await server.request('GET', '/api/v1/users/me')
    expect(res.status).toBe(401)
    const lines = await requestLines(res.headers.get('x-request-id'))
    expect(lines).toMatchObject([{ method: 'GET', path: '/api/v1/users/me', status: 401 }])
  })

  it('names the client address of a failed login', async () => {
    const res = await server.request('POST', '/api/v1/auth/login', {
      body: { email: 'nobody@example.com', password: 'wrong password' },
    })
    expect(res.status).toBe(401)
    expect(await requestLines(res.headers.get('x-request-id'))).toMatchObject([
      { status: 401, ip: '127.0.0.1', user_agent: expect.any(String) },
    ])
  })

  it('answers a NUL byte with a 422 and logs no warning or stack trace', async () => {
    const user = await registerUser(server)
    const before = captured.lines.length
    const created = await server.request('POST', '/api/v1/projects', {
      token: user.access,
      body: { name: 'a\u0000b' },
    })
    expect(created.status).toBe(422)
    const listed = await server.request('GET', '/api/v1/tasks?search=a%00b', { token: user.access })
    expect(listed.status).toBe(422)
    await requestLines(listed.headers.get('x-request-id'))
    const lines = captured.lines.slice(before)
    expect(lines.filter((l) => l.msg === 'request').length).toBeGreaterThanOrEqual(2)
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([])
    expect(lines.filter((l) => 'stack' in l)).toEqual([])
  })
})

describe('answers that carry tokens', () => {
  it('are never cached: register, login and refresh send Cache-Control: no-store', async () => {
    const user = await registerUser(server)
    const registered = await server.request('POST', '/api/v1/auth/register', {
      body: { email: 'cache@example.com', username: 'cache_user', password: 'password123' },
    })
    expect(registered.status).toBe(201)
    expect(registered.headers.get('cache-control')).toBe('no-store')
    const login = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    expect(login.status).toBe(200)
    expect(login.headers.get('cache-control')).toBe('no-store')
    const refreshed = await server.request('POST', '/api/v1/auth/refresh', {
      body: { refresh_token: login.body.refresh_token },
    })
    expect(refreshed.status).toBe(200)
    expect(refreshed.headers.get('cache-control')).toBe('no-store')
  }, 30_000)
})
