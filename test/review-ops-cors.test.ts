import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer({ CORS_ORIGINS: 'https://app.example.com' })
}, 60_000)
afterAll(() => server.close(), 30_000)

const origin = 'https://app.example.com'
const listed = (value: string | null) =>
  (value ?? '').split(',').map((name) => name.trim().toLowerCase())

describe('CORS for browser clients of the Integrations features', () => {
  it('lets a browser send Idempotency-Key and read Idempotency-Replayed', async () => {
    const preflight = await fetch(`${server.url}/api/v1/projects`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, idempotency-key',
      },
    })
    expect(preflight.status).toBe(204)
    expect(listed(preflight.headers.get('access-control-allow-headers'))).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']),
    )

    const user = await registerUser(server)
    const headers = {
      origin,
      authorization: `Bearer ${user.access}`,
      'content-type': 'application/json',
      'idempotency-key': crypto.randomUUID(),
    }
    const post = () =>
      fetch(`${server.url}/api/v1/projects`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name: 'Once' }),
      })
    expect((await post()).status).toBe(201)
    const replayed = await post()
    expect(replayed.headers.get('idempotency-replayed')).toBe('true')
    expect(listed(replayed.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining(['idempotency-replayed', 'etag', 'location', 'x-request-id']),
    )
  })
})
