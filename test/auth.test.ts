import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { SignJWT } from 'jose'
import {
  deleteEndedSessions,
  grantInitialRole,
  insertUser,
  lockRegistrations,
} from '../src/modules/auth/queries'
import {
  decodeJwt,
  expectProblemShape,
  JWT_SECRET,
  registerUser,
  startServer,
  type TestServer,
} from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer()
}, 60_000)
afterAll(() => server.close(), 30_000)

const login = (email: string, password: string) =>
  server.request('POST', '/api/v1/auth/login', { body: { email, password } })
const refresh = (token: string) =>
  server.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: token } })
const me = (token: string) => server.request('GET', '/api/v1/users/me', { token })

describe('POST /auth/register', () => {
  it('makes the first user of an empty database admin and later ones developer', async () => {
    const first = await registerUser(server)
    const second = await registerUser(server)
    expect(first.body.user.roles).toEqual(['admin'])
    expect(second.body.user.roles).toEqual(['developer'])
  })

  // Needs two concurrent sessions, which the single-session embedded database does not have.
  it.skipIf(!process.env.DATABASE_URL)(
    'makes only one admin when the first two registrations overlap',
    async () => {
      const empty = await startServer()
      const [a, b] = await Promise.all([empty.db.sql.reserve(), empty.db.sql.reserve()])
      try {
        const user = (n: number) => ({
          email: `race${n}@example.com`,
          username: `race${n}`,
          password_hash: 'x',
          first_name: null,
          last_name: null,
        })
        await a`begin`
        await lockRegistrations(a)
        await grantInitialRole(a, await insertUser(a, user(1)))
        // The second registration must wait for the first to commit before choosing its role.
        const second = (async () => {
          await b`begin`
          await lockRegistrations(b)
          await grantInitialRole(b, await insertUser(b, user(2)))
          await b`commit`
        })()
        await Bun.sleep(200)
        await a`commit`
        await second
        const rows = await empty.db.sql<{ name: string }[]>`
          select r.name from user_roles ur join roles r on r.id = ur.role_id order by r.name
        `
        expect(rows.map((r) => r.name)).toEqual(['admin', 'developer'])
      } finally {
        a.release()
        b.release()
        await empty.close()
      }
    },
  )

  it('answers 201 with tokens, the user without a password hash, and a Location', async () => {
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: {
        email: 'Grace@Example.com',
        username: 'grace',
        password: 'a long enough password',
        first_name: 'Grace',
        last_name: 'Hopper',
      },
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('location')).toBe(`/api/v1/users/${res.body.user.id}`)
    expect(res.body.token_type).toBe('Bearer')
    expect(res.body.expires_in).toBe(900)
    expect(res.body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(res.body.user).toMatchObject({
      email: 'Grace@Example.com',
      username: 'grace',
      first_name: 'Grace',
      last_name: 'Hopper',
      is_active: true,
      email_verified: false,
    })
    expect(res.text).not.toContain('password')
    expect(res.text).not.toContain('$argon2')
  })

  it('answers 409 for an email already registered in any letter case', async () => {
    const user = await registerUser(server)
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: {
        email: user.input.email.toUpperCase(),
        username: 'someone_else',
        password: 'password123',
      },
    })
    expectProblemShape(res, 409)
    expect(res.text).not.toMatch(/users_email|constraint|duplicate key|insert/i)
  })

  it('answers 409 for a username taken in any letter case', async () => {
    const user = await registerUser(server)
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: {
        email: 'fresh@example.com',
        username: user.input.username.toUpperCase(),
        password: 'password123',
      },
    })
    expectProblemShape(res, 409)
  })

  it('answers 422 naming each bad field and never echoing the password', async () => {
    const secret = 'short'
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: { email: 'not-an-email', username: 'a b', password: secret },
    })
    expectProblemShape(res, 422)
    const paths = res.body.errors.map((e: { path: string }) => e.path).sort()
    expect(paths).toEqual(['/email', '/password', '/username'])
    expect(res.text).not.toContain(`"${secret}"`)
    expect(res.text).not.toContain('not-an-email')
  })

  it('rejects a password longer than 128 characters without echoing it', async () => {
    const secret = 'p'.repeat(129)
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: { email: 'long@example.com', username: 'longpw', password: secret },
    })
    expectProblemShape(res, 422)
    expect(res.text).not.toContain(secret)
  })

  it('creates nothing when the input is invalid', async () => {
    await server.request('POST', '/api/v1/auth/register', {
      body: { email: 'ghost@example.com', username: 'ghost', password: 'x' },
    })
    const res = await login('ghost@example.com', 'x')
    expect(res.status).toBe(401)
  })

  it('ignores role or id fields smuggled into the body', async () => {
    const res = await server.request('POST', '/api/v1/auth/register', {
      body: {
        email: 'mallory@example.com',
        username: 'mallory',
        password: 'password123',
        roles: ['admin'],
        is_active: false,
        id: '00000000-0000-7000-8000-000000000000',
      },
    })
    expect(res.status).toBe(201)
    expect(res.body.user.roles).toEqual(['developer'])
    expect(res.body.user.is_active).toBe(true)
    expect(res.body.user.id).not.toBe('00000000-0000-7000-8000-000000000000')
  })
})

describe('POST /auth/login', () => {
  it('signs in with the email in any letter case', async () => {
    const user = await registerUser(server)
    const res = await login(user.input.email.toUpperCase(), user.input.password)
    expect(res.status).toBe(200)
    expect(res.body.user.id).toBe(user.id)
    expect((await me(res.body.access_token)).status).toBe(200)
  })

  it('replaces a stored hash weaker than argon2id m=19456,t=2 at sign-in and keeps a stronger one', async () => {
    const sql = server.db.sql
    const storedHash = async (id: string) => {
      const [row] = await sql<{ password_hash: string }[]>`
        select password_hash from users where id = ${id}
      `
      return row?.password_hash ?? ''
    }
    const weak = await registerUser(server)
    const strong = await registerUser(server)
    const hashes = {
      weak: await Bun.password.hash(weak.input.password, {
        algorithm: 'argon2id',
        memoryCost: 8192,
        timeCost: 1,
      }),
      strong: await Bun.password.hash(strong.input.password, {
        algorithm: 'argon2id',
        memoryCost: 65_536,
        timeCost: 2,
      }),
    }
    await sql`update users set password_hash = ${hashes.weak} where id = ${weak.id}`
    await sql`update users set password_hash = ${hashes.strong} where id = ${strong.id}`
    expect((await login(weak.input.email, weak.input.password)).status).toBe(200)
    expect((await login(strong.input.email, strong.input.password)).status).toBe(200)
    const rehashed = await storedHash(weak.id)
    expect(rehashed).toStartWith('$argon2id$v=19$m=19456,t=2,p=1$')
    expect(await Bun.password.verify(weak.input.password, rehashed)).toBe(true)
    expect(await storedHash(strong.id)).toBe(hashes.strong)
  })

  it('answers the same 401 body for a wrong password and an unknown email', async () => {
    const user = await registerUser(server)
    const wrong = await login(user.input.email, 'not the password')
    const unknown = await login('nobody@example.com', 'not the password')
    expectProblemShape(wrong, 401)
    expectProblemShape(unknown, 401)
    const { request_id: _a, ...wrongBody } = wrong.body
    const { request_id: _b, ...unknownBody } = unknown.body
    expect(wrongBody).toEqual(unknownBody)
  })

  it('issues access tokens with HS256, at+jwt, iss, aud, sub, sid and exp - iat equal to the TTL', async () => {
    const user = await registerUser(server)
    const { header, payload } = decodeJwt(user.access)
    expect(header).toMatchObject({ alg: 'HS256', typ: 'at+jwt' })
    expect(payload).toMatchObject({ iss: 'taskapi', aud: 'taskapi', sub: user.id })
    expect(typeof payload.sid).toBe('string')
    expect(payload.exp - payload.iat).toBe(server.config.accessTokenTtl)
  })
})

describe('deactivated accounts', () => {
  it('cannot log in (same 401 body as a wrong password) nor refresh', async () => {
    const user = await registerUser(server)
    await server.db.sql`update users set is_active = false where id = ${user.id}`
    const res = await login(user.input.email, user.input.password)
    const wrong = await login(user.input.email, 'not the password')
    expectProblemShape(res, 401)
    expect(res.body.detail).toBe(wrong.body.detail)
    expectProblemShape(await refresh(user.refresh), 401)
  })

  it('lose their access tokens once the session cache entry expires', async () => {
    const uncached = await startServer({ SESSION_CACHE_TTL_MS: '0' })
    try {
      const user = await registerUser(uncached)
      const get = () => uncached.request('GET', '/api/v1/users/me', { token: user.access })
      expect((await get()).status).toBe(200)
      await uncached.db.sql`update users set is_active = false where id = ${user.id}`
      expectProblemShape(await get(), 401)
    } finally {
      await uncached.close()
    }
  })
})

describe('ended sessions', () => {
  it('are deleted a week after they end, live ones are kept', async () => {
    const user = await registerUser(server)
    const insert = (expires: string, revoked: string | null) => server.db.sql`
      insert into user_sessions (user_id, token_hash, expires_at, revoked_at)
      values (${user.id}, ${crypto.randomUUID()}, now() + ${expires}::interval, now() + ${revoked}::interval)
      returning id
    `
    const [[expired], [revoked], [recent]] = await Promise.all([
      insert('-8 days', null),
      insert('20 days', '-8 days'),
      insert('20 days', '-1 day'),
    ])
    expect(await deleteEndedSessions(server.db.sql, 7)).toBeGreaterThanOrEqual(2)
    const left = await server.db.sql<{ id: string }[]>`
      select id from user_sessions where user_id = ${user.id}
    `
    const ids = left.map((r) => r.id)
    expect(ids).not.toContain(expired?.id)
    expect(ids).not.toContain(revoked?.id)
    expect(ids).toContain(recent?.id)
    expect((await me(user.access)).status).toBe(200)
  })
})

describe('client address', () => {
  it('is the peer address unless TRUST_PROXY, then the last X-Forwarded-For entry', async () => {
    const sessionsOf = async (target: TestServer, headers: Record<string, string>) => {
      const user = await registerUser(target)
      await target.request('POST', '/api/v1/auth/login', {
        body: { email: user.input.email, password: user.input.password },
        headers,
      })
      const res = await target.request('GET', '/api/v1/auth/sessions', { token: user.access })
      return res.body.map((s: { ip_address: string | null }) => s.ip_address)
    }
    const spoof = { 'x-forwarded-for': '10.9.9.9, 203.0.113.7' }
    expect(await sessionsOf(server, spoof)).toEqual(['127.0.0.1', '127.0.0.1'])
    const proxied = await startServer({ TRUST_PROXY: 'true' })
    try {
      expect(await sessionsOf(proxied, spoof)).toContain('203.0.113.7')
      expect(await sessionsOf(proxied, spoof)).not.toContain('10.9.9.9')
      const malformed = await sessionsOf(proxied, { 'x-forwarded-for': '999.1.1.1' })
      expect(malformed).toContain(null)
    } finally {
      await proxied.close()
    }
  })
})

describe('access tokens', () => {
  type SignOptions = { secret?: string; exp?: number; typ?: string; aud?: string; iss?: string }
  const sign = (claims: Record<string, unknown>, opts: SignOptions = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: opts.typ ?? 'at+jwt' })
      .setIssuer(opts.iss ?? 'taskapi')
      .setAudience(opts.aud ?? 'taskapi')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 600)
      .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET))

  it('rejects a request without a token with 401 and WWW-Authenticate', async () => {
    const res = await server.request('GET', '/api/v1/users/me')
    expectProblemShape(res, 401)
    expect(res.headers.get('www-authenticate')).toBe('Bearer')
  })

  it('rejects garbage, a token signed with another key, an expired one and alg none', async () => {
    const user = await registerUser(server)
    const { payload } = decodeJwt(user.access)
    const claims = { sub: user.id, sid: payload.sid }
    const unsigned = [
      Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url'),
      Buffer.from(JSON.stringify({ ...payload })).toString('base64url'),
      '',
    ].join('.')
    const tokens = [
      'garbage',
      'a.b.c',
      await sign(claims, { secret: 'another secret that is long enough to be valid!' }),
      await sign(claims, { exp: Math.floor(Date.now() / 1000) - 60 }),
      unsigned,
    ]
    for (const token of tokens) expectProblemShape(await me(token), 401)
    // The same claims signed with the right key pass: the failures above are the key, exp and alg.
    expect((await me(await sign(claims))).status).toBe(200)
  })

  it('rejects a correctly signed token whose sid or sub is not a UUID', async () => {
    const user = await registerUser(server)
    expectProblemShape(await me(await sign({ sub: user.id, sid: 'not-a-uuid' })), 401)
    expectProblemShape(await me(await sign({ sub: 42, sid: crypto.randomUUID() })), 401)
  })

  it('rejects a token of another type, audience or issuer signed with the right key', async () => {
    const user = await registerUser(server)
    const { payload } = decodeJwt(user.access)
    const claims = { sub: user.id, sid: payload.sid }
    const wrongTyp = await sign(claims, { typ: 'JWT' })
    const wrongAud = await sign(claims, { aud: 'somebody-else' })
    const wrongIss = await sign(claims, { iss: 'somebody-else' })
    expectProblemShape(await me(wrongIss), 401)
    expectProblemShape(await me(wrongTyp), 401)
    expectProblemShape(await me(wrongAud), 401)
  })
})

describe('POST /auth/refresh', () => {
  it('returns new tokens and the old refresh token stops working', async () => {
    const user = await registerUser(server)
    const first = await refresh(user.refresh)
    expect(first.status).toBe(200)
    expect(first.body.refresh_token).not.toBe(user.refresh)
    expect((await me(first.body.access_token)).status).toBe(200)
    const second = await refresh(first.body.refresh_token)
    expect(second.status).toBe(200)
  })

  it('revokes the whole session when a rotated-out token is presented again', async () => {
    const user = await registerUser(server)
    const rotated = await refresh(user.refresh)
    expect(rotated.status).toBe(200)
    const replay = await refresh(user.refresh)
    expectProblemShape(replay, 401)
    // The newest refresh token and access token of the session are dead too.
    expectProblemShape(await refresh(rotated.body.refresh_token), 401)
    expectProblemShape(await me(rotated.body.access_token), 401)
    expectProblemShape(await me(user.access), 401)
  })

  it('never lets two parallel refreshes with the same token both succeed', async () => {
    const user = await registerUser(server)
    const results = await Promise.all(Array.from({ length: 8 }, () => refresh(user.refresh)))
    const winners = results.filter((r) => r.status === 200)
    expect(winners).toHaveLength(1)
    expect(results.filter((r) => r.status === 401)).toHaveLength(7)
    // The losers presented a rotated-out token: that is reuse, and it ends the winner's session too.
    expectProblemShape(await me(winners[0]?.body.access_token), 401)
    expectProblemShape(await refresh(winners[0]?.body.refresh_token), 401)
  })

  it('answers 401 for an unknown token and 422 for a missing one', async () => {
    expectProblemShape(await refresh('x'.repeat(43)), 401)
    expectProblemShape(await server.request('POST', '/api/v1/auth/refresh', { body: {} }), 422)
  })
})

describe('POST /auth/logout', () => {
  it('ends the session: the access token fails at once and the refresh token too', async () => {
    const user = await registerUser(server)
    expect((await me(user.access)).status).toBe(200)
    const res = await server.request('POST', '/api/v1/auth/logout', { token: user.access })
    expect(res.status).toBe(204)
    expectProblemShape(await me(user.access), 401)
    expectProblemShape(await refresh(user.refresh), 401)
  })

  it('leaves the user’s other sessions alone', async () => {
    const user = await registerUser(server)
    const other = await login(user.input.email, user.input.password)
    await server.request('POST', '/api/v1/auth/logout', { token: user.access })
    expect((await me(other.body.access_token)).status).toBe(200)
  })

  it('answers 401 without a token', async () => {
    expectProblemShape(await server.request('POST', '/api/v1/auth/logout'), 401)
  })
})

describe('POST /auth/logout-all', () => {
  it('ends every session of the user and no one else’s', async () => {
    const user = await registerUser(server)
    const other = await login(user.input.email, user.input.password)
    const stranger = await registerUser(server)
    const res = await server.request('POST', '/api/v1/auth/logout-all', { token: user.access })
    expect(res.status).toBe(204)
    expectProblemShape(await me(user.access), 401)
    expectProblemShape(await me(other.body.access_token), 401)
    expectProblemShape(await refresh(other.body.refresh_token), 401)
    expect((await me(stranger.access)).status).toBe(200)
  })
})

describe('GET /auth/sessions', () => {
  it('lists the caller’s live sessions and marks the current one', async () => {
    const user = await registerUser(server)
    await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
      headers: { 'user-agent': 'phone-app/1.0' },
    })
    const res = await server.request('GET', '/api/v1/auth/sessions', { token: user.access })
    expect(res.status).toBe(200)
    expect(res.body).toHaveLength(2)
    expect(res.body.filter((s: { current: boolean }) => s.current)).toHaveLength(1)
    expect(res.body.map((s: { user_agent: string }) => s.user_agent)).toContain('phone-app/1.0')
    expect(res.body[0]).toHaveProperty('ip_address')
    expect(res.text).not.toContain('token_hash')
  })

  it('never shows another user’s sessions', async () => {
    const a = await registerUser(server)
    const b = await registerUser(server)
    const res = await server.request('GET', '/api/v1/auth/sessions', { token: b.access })
    const { payload } = decodeJwt(a.access)
    expect(res.body.map((s: { id: string }) => s.id)).not.toContain(payload.sid)
  })
})

describe('DELETE /auth/sessions/:id', () => {
  it('ends one of the caller’s sessions', async () => {
    const user = await registerUser(server)
    const other = await login(user.input.email, user.input.password)
    const otherSid = decodeJwt(other.body.access_token).payload.sid
    const res = await server.request('DELETE', `/api/v1/auth/sessions/${otherSid}`, {
      token: user.access,
    })
    expect(res.status).toBe(204)
    expectProblemShape(await me(other.body.access_token), 401)
    expect((await me(user.access)).status).toBe(200)
  })

  it('answers 404 for another user’s session and leaves it alive', async () => {
    const a = await registerUser(server)
    const b = await registerUser(server)
    const sid = decodeJwt(a.access).payload.sid
    const res = await server.request('DELETE', `/api/v1/auth/sessions/${sid}`, { token: b.access })
    expectProblemShape(res, 404)
    expect((await me(a.access)).status).toBe(200)
  })

  it('answers 422 for an id that is not a UUID', async () => {
    const user = await registerUser(server)
    const res = await server.request('DELETE', '/api/v1/auth/sessions/not-a-uuid', {
      token: user.access,
    })
    expectProblemShape(res, 422)
  })
})
