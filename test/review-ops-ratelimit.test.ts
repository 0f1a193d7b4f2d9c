import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'
import { connectWs } from './ws'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let user: Awaited<ReturnType<typeof registerUser>>
beforeAll(async () => {
  server = await startServer({ RATE_LIMIT_REQUESTS: '5', RATE_LIMIT_WINDOW_S: '60' })
  user = await registerUser(server)
}, 60_000)
afterAll(() => server.close(), 30_000)

describe('rate limits on /ws', () => {
  it('counts refused upgrades against the address, so guessing tokens there is not free', async () => {
    const guess = () =>
      `tapi_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')}`
    // Five requests a minute per address; registering the user spent one of them.
    const statuses: number[] = []
    for (let i = 0; i < 8; i += 1) {
      const res = await server.request('GET', `/ws?access_token=${guess()}`, {
        headers: { 'x-forwarded-for': `203.0.113.${i}` },
      })
      statuses.push(res.status)
      if (res.status === 429) {
        expectProblemShape(res, 429)
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        break
      }
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429])
    // A valid token still opens a socket: only refused tokens cost the address.
    const client = await connectWs(server, user.access)
    expect((await client.next()).type).toBe('welcome')
    client.close()
  })
})
