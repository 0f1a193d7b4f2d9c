import { afterAll, beforeAll, describe, expect, it } from 'bun:test'
import { captureLogger, eventually, startServer, type TestServer } from './helpers'

let server: TestServer
const captured = captureLogger()
beforeAll(async () => {
  server = await startServer({ MAX_JSON_BODY_BYTES: '4096' }, captured.logger)
}, 60_000)
afterAll(() => server.close())

/** Every request log line with this request id, once the first one has appeared. */
async function requestLines(id: string | null) {
  await eventually(() => captured.lines.find((l) => l.msg === 'request' && l.request_id === id))
  await Bun.sleep(50)
  return captured.lines.filter((l) => l.msg === 'request' && l.request_id === id)
}

describe('the request log', () => {
  it('logs a body refused before routing (415) once, with its status', async () => {
    const res = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    })
    expect(res.status).toBe(415)
    const lines = await requestLines(res.headers.get('x-request-id'))
    expect(lines).toMatchObject([{ method: 'POST', path: '/api/v1/auth/login', status: 415 }])
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
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
    })
    expect(res.status).toBe(204)
    const lines = await requestLines(res.headers.get('x-request-id'))
    expect(lines).toMatchObject([{ method: 'OPTIONS', path: '/api/v1/users/me', status: 204 }])
  })

  it('logs a routed request once', async () => {
    const res = await server.request('GET', '/api/v1/users/me')
    expect(res.status).toBe(401)
    const lines = await requestLines(res.headers.get('x-request-id'))
    expect(lines).toMatchObject([{ method: 'GET', path: '/api/v1/users/me', status: 401 }])
  })
})
