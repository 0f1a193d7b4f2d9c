import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import postgres from 'postgres'
import { jsonTextTooDeep, valueTooDeep } from '../src/json-depth'
import { boundedSemaphore } from '../src/modules/auth/passwords'
import { HttpProblem } from '../src/problems'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer()
}, 60_000)
afterAll(() => server.close(), 30_000)

const nestedObject = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`
const nestedArray = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`

async function post(path: string, body: string | FormData, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + path, { method: 'POST', body, headers })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null }
}

describe('deeply nested JSON', () => {
  it('answers 400 problem+json to a 50,000-level body on an anonymous route', async () => {
    const body = `{"email": ${nestedObject(50_000)}, "password": "x"}`
    const res = await post('/api/v1/auth/login', body, { 'content-type': 'application/json' })
    expectProblemShape(res, 400)
    expect(res.body.detail).toContain('64')
  })

  it('answers 400, not 401 or 500, however the nesting is spelled, and accepts 64 levels', async () => {
    const json = { 'content-type': 'application/json' }
    for (const body of [
      nestedArray(65),
      `{"email":"a@b.c","password":"x","p":${nestedArray(100)}}`,
    ])
      expectProblemShape(await post('/api/v1/auth/register', body, json), 400)
    // 64 levels pass the limit and reach validation (an object is not an email).
    const ok = await post('/api/v1/auth/register', `{"email": ${nestedObject(63)}}`, json)
    expectProblemShape(ok, 422)
    // Brackets inside strings are text, not nesting.
    const inString = await post(
      '/api/v1/auth/login',
      JSON.stringify({ email: '['.repeat(200), password: '{'.repeat(1000) }),
      json,
    )
    expectProblemShape(inString, 401)
  })

  it('answers 400 to nesting inside a multipart field, which Elysia would parse as JSON', async () => {
    const user = await registerUser(server)
    const form = new FormData()
    form.set('first_name', nestedObject(50_000))
    const res = await fetch(`${server.url}/api/v1/users/me`, {
      method: 'PATCH',
      body: form,
      headers: { authorization: `Bearer ${user.access}` },
    })
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toStartWith('application/problem+json')
    const me = await server.request('GET', '/api/v1/users/me', { token: user.access })
    expect(me.body.first_name).toBeNull()
  })

  it('measures nesting of text and of parsed values without recursion', () => {
    expect(jsonTextTooDeep(nestedArray(64), 64)).toBe(false)
    expect(jsonTextTooDeep(nestedArray(65), 64)).toBe(true)
    expect(jsonTextTooDeep(`"${'['.repeat(100)}"`, 64)).toBe(false)
    expect(jsonTextTooDeep(`${String.raw`["\\",`}${nestedArray(70)}]`, 64)).toBe(true)
    const deep = JSON.parse(nestedArray(100_000))
    expect(valueTooDeep(deep, 64)).toBe(true)
    expect(valueTooDeep(JSON.parse(nestedArray(64)), 64)).toBe(false)
    expect(valueTooDeep({ file: new Blob(['x']), a: [1, { b: 2 }] }, 3)).toBe(false)
  })

  it('keeps /health answering while 8 such bodies arrive at once', async () => {
    const body = `{"email": ${nestedObject(50_000)}, "password": "x"}`
    const attacks = Array.from({ length: 8 }, () =>
      post('/api/v1/auth/login', body, { 'content-type': 'application/json' }),
    )
    const health = await fetch(`${server.url}/health`)
    expect(health.status).toBe(200)
    for (const res of await Promise.all(attacks)) expect(res.status).toBe(400)
  })

  it('never answers 500 to a malformed body', async () => {
    const user = await registerUser(server)
    const bodies = ['{', '[', '{"a":1}}', 'nul', '"\\u0000"', '\u0000', '1e999', '[]', '"x"', '5']
    for (const body of bodies) {
      const res = await fetch(`${server.url}/api/v1/users/me`, {
        method: 'PATCH',
        body,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${user.access}` },
      })
      expect([400, 422]).toContain(res.status)
    }
  })
})

describe('authentication comes before validation', () => {
  it('answers 401, not 422, to anonymous calls with invalid bodies, queries and params', async () => {
    const calls: [string, string, unknown?][] = [
      ['PUT', '/api/v1/users/me/password', {}],
      ['PATCH', '/api/v1/users/me', { username: 5 }],
      ['PUT', '/api/v1/users/me', { avatar_url: 'nope' }],
      ['GET', '/api/v1/users?limit=100000'],
      ['GET', '/api/v1/users/not-a-uuid'],
      ['DELETE', '/api/v1/auth/sessions/not-a-uuid'],
    ]
    for (const [method, path, body] of calls)
      expectProblemShape(await server.request(method, path, { body }), 401)
  })

  it('answers 401 to an anonymous malformed or deep body on a guarded route, before parsing it', async () => {
    for (const body of ['{', nestedObject(50_000)]) {
      const res = await fetch(`${server.url}/api/v1/users/me`, {
        method: 'PATCH',
        body,
        headers: { 'content-type': 'application/json' },
      })
      expect(res.status).toBe(401)
    }
    const form = new FormData()
    form.set('first_name', 'x')
    const multipart = await fetch(`${server.url}/api/v1/users/me`, { method: 'PATCH', body: form })
    expect(multipart.status).toBe(401)
  })

  it('answers 401 to a bad token with a bad body', async () => {
    const res = await server.request('PUT', '/api/v1/users/me/password', {
      token: 'not.a.jwt',
      body: {},
    })
    expectProblemShape(res, 401)
  })
})

describe('login', () => {
  it('answers 401 with the usual body to an email holding a NUL byte', async () => {
    const user = await registerUser(server)
    const nul = await server.request('POST', '/api/v1/auth/login', {
      body: { email: `${user.input.email}\u0000`, password: user.input.password },
    })
    const wrong = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: 'wrong password' },
    })
    expectProblemShape(nul, 401)
    expect(nul.body.detail).toBe(wrong.body.detail)
  })
})

describe('password changes racing logins', () => {
  // A hash with older argon2 parameters, so that a login re-hashes it.
  const legacyHash = (password: string) =>
    Bun.password.hash(password, { algorithm: 'argon2id', memoryCost: 19_456, timeCost: 2 })

  const login = (email: string, password: string) =>
    server.request('POST', '/api/v1/auth/login', { body: { email, password } })

  it('cannot be undone by a login that re-hashes the old password', async () => {
    for (let trial = 0; trial < 4; trial++) {
      const user = await registerUser(server)
      const { email, password } = user.input
      await server.db.sql`
        update users set password_hash = ${await legacyHash(password)} where id = ${user.id}
      `
      const next = `new password ${trial}`
      const [change] = await Promise.all([
        server.request('PUT', '/api/v1/users/me/password', {
          token: user.access,
          body: { current_password: password, new_password: next },
        }),
        Bun.sleep(trial * 40).then(() => login(email, password)),
      ])
      expect(change.status).toBe(204)
      expect((await login(email, next)).status).toBe(200)
      expect((await login(email, password)).status).toBe(401)
    }
  }, 60_000)

  it('leaves no session opened with the old password', async () => {
    for (let trial = 0; trial < 2; trial++) {
      const user = await registerUser(server)
      const { email, password } = user.input
      const logins = Array.from({ length: 8 }, (_, i) =>
        Bun.sleep(i * 30).then(() => login(email, password)),
      )
      const change = Bun.sleep(100).then(() =>
        server.request('PUT', '/api/v1/users/me/password', {
          token: user.access,
          body: { current_password: password, new_password: 'a brand new one' },
        }),
      )
      expect((await change).status).toBe(204)
      const answers = await Promise.all(logins)
      for (const res of answers) expect([200, 401]).toContain(res.status)
      // Only the session that made the change is still live.
      const [live] = await server.db.sql<{ count: number }[]>`
        select count(*)::int as count
        from user_sessions
        where user_id = ${user.id} and revoked_at is null
      `
      expect(live?.count).toBe(1)
      for (const res of answers.filter((r) => r.status === 200)) {
        const me = await server.request('GET', '/api/v1/users/me', { token: res.body.access_token })
        expect(me.status).toBe(401)
      }
    }
  }, 60_000)

  it('lets only one of two concurrent changes from the same current password win', async () => {
    const user = await registerUser(server)
    const change = (to: string) =>
      server.request('PUT', '/api/v1/users/me/password', {
        token: user.access,
        body: { current_password: user.input.password, new_password: to },
      })
    const answers = await Promise.all([change('first new one'), change('second new one')])
    expect(answers.map((a) => a.status).sort()).toEqual([204, 422])
    const winner = answers[0]?.status === 204 ? 'first new one' : 'second new one'
    expect((await login(user.input.email, winner)).status).toBe(200)
  }, 30_000)
})

describe('the password-hashing queue', () => {
  it('refuses work beyond its length at once and after its wait, with a 503 problem', async () => {
    const limit = boundedSemaphore({ concurrency: 1, queueMax: 1, waitMs: 50 })
    let release = () => {}
    const first = limit(() => new Promise<void>((done) => (release = done)))
    const second = limit(async () => 'second ran')
    const third = limit(async () => 'third ran')
    const refused = await third.catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(HttpProblem)
    expect((refused as HttpProblem).status).toBe(503)
    expect((refused as HttpProblem).extra.headers?.['retry-after']).toBe('1')
    // The second waits past waitMs and is refused too; the first still completes.
    expect(await second.catch((error: unknown) => (error as HttpProblem).status)).toBe(503)
    release()
    await first
    expect(await limit(async () => 'free again')).toBe('free again')
  })

  it('answers 503 with Retry-After to logins beyond the queue, and 401 to the rest', async () => {
    const busy = await startServer({
      PASSWORD_HASH_CONCURRENCY: '1',
      PASSWORD_HASH_QUEUE_MAX: '2',
      PASSWORD_HASH_WAIT_MS: '2000',
    })
    try {
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          busy.request('POST', '/api/v1/auth/login', {
            body: { email: `nobody${i}@example.com`, password: 'whatever' },
          }),
        ),
      )
      const statuses = answers.map((a) => a.status)
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0)
      expect(statuses.every((s) => s === 503 || s === 401)).toBe(true)
      const refused = answers.find((a) => a.status === 503)
      if (!refused) throw new Error('no 503')
      expectProblemShape(refused, 503)
      expect(refused.headers.get('retry-after')).toBe('1')
    } finally {
      await busy.close()
    }
  }, 60_000)
})

describe('database session settings', () => {
  // Needs new sessions on the same database: PostgreSQL only (the embedded one is one session).
  it.skipIf(!process.env.DATABASE_URL)(
    'keeps RFC 3339 timestamps when the database defaults to another DateStyle and time zone',
    async () => {
      const [{ name } = { name: '' }] = await server.db.sql<{ name: string }[]>`
        select current_database() as name
      `
      const admin = postgres(server.config.databaseUrl as string, { max: 1, onnotice: () => {} })
      try {
        await admin`alter database ${admin(name)} set datestyle = 'SQL, DMY'`
        await admin`alter database ${admin(name)} set timezone = 'Asia/Kolkata'`
        // Every pooled session ends; the next ones start with the database's new defaults.
        await admin`
          select pg_terminate_backend(pid)
          from pg_stat_activity
          where datname = ${name}
        `
      } finally {
        await admin.end()
      }
      await Bun.sleep(100)
      const user = await registerUser(server)
      const res = await server.request('POST', '/api/v1/auth/login', {
        body: { email: user.input.email, password: user.input.password },
      })
      expect(res.status).toBe(200)
      expect(new Date(res.body.user.created_at).toISOString()).toBe(res.body.user.created_at)
      const [setting] = await server.db.sql<{ DateStyle: string }[]>`show datestyle`
      expect(setting?.DateStyle).toBe('ISO, MDY')
    },
    30_000,
  )
})
