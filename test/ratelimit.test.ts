import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { TokenBuckets } from '../src/modules/ratelimit/buckets'
import {
  expectProblemShape,
  registerUser,
  startServer,
  type TestResponse,
  type TestServer,
} from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

const expectLimitHeaders = (res: TestResponse, remaining: number) => {
  expect(res.headers.get('ratelimit-limit')).toBe('3')
  expect(res.headers.get('ratelimit-remaining')).toBe(String(remaining))
  expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0)
  expect(res.headers.get('ratelimit-policy')).toBe('"api";q=3;w=60')
  expect(res.headers.get('ratelimit')).toMatch(new RegExp(`^"api";r=${remaining};t=\\d+$`))
}

describe('rate limits per user and per address', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT_REQUESTS: '3', RATE_LIMIT_WINDOW_S: '60' })
  }, 60_000)
  afterAll(() => server.close(), 60_000)

  it('the fourth request of a user in the window gets 429 with Retry-After and the headers', async () => {
    const user = await registerUser(server)
    for (const remaining of [2, 1, 0]) {
      const res = await server.request('GET', '/api/v1/users/me', { token: user.access })
      expect(res.status).toBe(200)
      expectLimitHeaders(res, remaining)
    }
    const limited = await server.request('GET', '/api/v1/users/me', { token: user.access })
    expectProblemShape(limited, 429)
    expectLimitHeaders(limited, 0)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(limited.body.detail).toContain('At most 3 requests per 60 s')
    // Another user has a bucket of their own.
    const other = await registerUser(server)
    expect((await server.request('GET', '/api/v1/users/me', { token: other.access })).status).toBe(
      200,
    )
  })

  it('anonymous callers are limited by address; a spoofed X-Forwarded-For does not reset it', async () => {
    // Registration above used this address's anonymous bucket: start from a fresh server.
    const fresh = await startServer({ RATE_LIMIT_REQUESTS: '3' })
    try {
      const statuses: number[] = []
      for (let i = 0; i < 5; i += 1) {
        const res = await fresh.request('GET', '/api/v1/projects', {
          headers: { 'x-forwarded-for': `203.0.113.${i}` },
        })
        statuses.push(res.status)
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429])
    } finally {
      await fresh.close()
    }
  })

  it('a bad token costs its address, so guessing tokens is limited too', async () => {
    const fresh = await startServer({ RATE_LIMIT_REQUESTS: '2' })
    try {
      const statuses: number[] = []
      for (let i = 0; i < 3; i += 1)
        statuses.push((await fresh.request('GET', '/api/v1/users/me', { token: `bad${i}` })).status)
      expect(statuses).toEqual([401, 401, 429])
    } finally {
      await fresh.close()
    }
  })

  it('requests to unknown /api/ routes are counted too: by user with a valid token, else by address', async () => {
    const fresh = await startServer({ RATE_LIMIT_REQUESTS: '3' })
    try {
      // Registering spends one of the address's three requests.
      const user = await registerUser(fresh)
      for (const remaining of [2, 1, 0]) {
        const res = await fresh.request('GET', '/api/v1/no-such-route', { token: user.access })
        expectProblemShape(res, 404)
        expectLimitHeaders(res, remaining)
      }
      const limited = await fresh.request('GET', '/api/v1/no-such-route', { token: user.access })
      expectProblemShape(limited, 429)
      expectLimitHeaders(limited, 0)
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      // Counted before the route runs, the 429 still has the cache headers of an authenticated answer.
      expect(limited.headers.get('cache-control')).toBe('private, no-cache')
      // The user's bucket, not the address's: a bad token still has the address's two left.
      const statuses: number[] = []
      for (let i = 0; i < 3; i += 1)
        statuses.push((await fresh.request('GET', '/api/v1/nope', { token: `bad${i}` })).status)
      expect(statuses).toEqual([404, 404, 429])
    } finally {
      await fresh.close()
    }
  })

  it('/health is not limited', async () => {
    const fresh = await startServer({ RATE_LIMIT_REQUESTS: '1' })
    try {
      for (let i = 0; i < 3; i += 1) {
        const res = await fresh.request('GET', '/health')
        expect(res.status).toBe(200)
        expect(res.headers.get('ratelimit-policy')).toBeNull()
      }
    } finally {
      await fresh.close()
    }
  })
})

describe('behind a trusted proxy', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer({
      TRUST_PROXY: 'true',
      RATE_LIMIT_REQUESTS: '2',
      RATE_LIMIT_AUTH_REQUESTS: '2',
    })
  }, 60_000)
  afterAll(() => server.close(), 60_000)

  it('the address is the entry the proxy appended; entries before it are the client’s claim', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 4; i += 1) {
      const res = await server.request('GET', '/api/v1/projects', {
        headers: { 'x-forwarded-for': `198.51.100.${i}, 192.0.2.7` },
      })
      statuses.push(res.status)
    }
    expect(statuses).toEqual([401, 401, 429, 429])
    // A different client behind the same proxy has its own bucket.
    const other = await server.request('GET', '/api/v1/projects', {
      headers: { 'x-forwarded-for': '192.0.2.8' },
    })
    expect(other.status).toBe(401)
  })

  it('login is limited per email across addresses, and per address across emails', async () => {
    const login = (email: string, address: string) =>
      server.request('POST', '/api/v1/auth/login', {
        body: { email, password: 'wrong password 1' },
        headers: { 'x-forwarded-for': address },
      })
    const perEmail = []
    for (let i = 0; i < 3; i += 1) perEmail.push(await login('victim@example.com', `192.0.2.2${i}`))
    expect(perEmail.map((r) => r.status)).toEqual([401, 401, 429])
    const limited = perEmail[2] as TestResponse
    expectProblemShape(limited, 429)
    expect(limited.headers.get('ratelimit-policy')).toContain('"auth";q=2;w=60')
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)

    const perAddress = []
    for (let i = 0; i < 3; i += 1)
      perAddress.push(await login(`someone${i}@example.com`, '192.0.2.40'))
    expect(perAddress.map((r) => r.status)).toEqual([401, 401, 429])
  })

  it('register is limited per address before the password is hashed', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 3; i += 1) {
      const res = await server.request('POST', '/api/v1/auth/register', {
        body: { email: `new${i}@example.com`, username: `new_${i}`, password: 'a good password' },
        headers: { 'x-forwarded-for': '192.0.2.50' },
      })
      statuses.push(res.status)
    }
    expect(statuses).toEqual([201, 201, 429])
  })

  it('refresh is limited per session (refresh token) across addresses', async () => {
    const user = await registerUser(server, {}).catch(async () => {
      throw new Error('registration was limited')
    })
    const statuses: number[] = []
    for (let i = 0; i < 3; i += 1) {
      const res = await server.request('POST', '/api/v1/auth/refresh', {
        body: { refresh_token: user.refresh },
        headers: { 'x-forwarded-for': `192.0.2.6${i}` },
      })
      statuses.push(res.status)
    }
    // The first rotates the token, the second is a reuse (401), the third is over the limit.
    expect(statuses).toEqual([200, 401, 429])
  })
})

describe('the buckets', () => {
  it('refill over the window', () => {
    let now = 0
    const buckets = new TokenBuckets(2, 1, 10, () => now)
    expect(buckets.take('a').allowed).toBe(true)
    expect(buckets.take('a').allowed).toBe(true)
    const refused = buckets.take('a')
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 })
    now = 500
    expect(buckets.take('a')).toMatchObject({ allowed: true, remaining: 0 })
    now = 5_000
    expect(buckets.take('a')).toMatchObject({ allowed: true, remaining: 1, resetSeconds: 1 })
  })

  it('100,000 distinct keys leave the map within its bound, least recently used going first', () => {
    let now = 0
    const buckets = new TokenBuckets(5, 60, 1_000, () => now)
    buckets.take('hot')
    buckets.take('hot')
    for (let i = 0; i < 100_000; i += 1) {
      now += 0.001
      buckets.take(`key-${i}`)
      if (i % 500 === 0) buckets.take('hot')
      expect(buckets.size).toBeLessThanOrEqual(1_000)
    }
    expect(buckets.size).toBe(1_000)
    // The key in steady use kept its count (it was never the least recently used).
    expect(buckets.take('hot').remaining).toBeLessThan(4)
  })

  it('forgets idle keys, which a new bucket would equal', () => {
    let now = 0
    const buckets = new TokenBuckets(5, 1, 1_000, () => now)
    for (let i = 0; i < 500; i += 1) buckets.take(`idle-${i}`)
    now = 1_000
    buckets.take('fresh')
    expect(buckets.size).toBe(1)
  })
})
