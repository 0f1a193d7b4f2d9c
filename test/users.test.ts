import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer()
}, 60_000)
afterAll(() => server.close(), 30_000)

const me = (token: string) => server.request('GET', '/api/v1/users/me', { token })

describe('GET /users/me', () => {
  it('returns the caller’s account with email and roles and no password hash', async () => {
    const user = await registerUser(server, { first_name: 'Ada' })
    const res = await me(user.access)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      id: user.id,
      email: user.input.email,
      username: user.input.username,
      first_name: 'Ada',
      last_name: null,
      avatar_url: null,
      is_active: true,
      email_verified: false,
    })
    expect(Array.isArray(res.body.roles)).toBe(true)
    expect(new Date(res.body.created_at).toISOString()).toBe(res.body.created_at)
    expect(res.text).not.toMatch(/password|argon2/)
  })

  it('answers 401 without a token', async () => {
    expectProblemShape(await server.request('GET', '/api/v1/users/me'), 401)
  })
})

describe('PATCH /users/me', () => {
  it('changes only the fields sent and clears a field sent as null', async () => {
    const user = await registerUser(server, { first_name: 'Ada', last_name: 'Byron' })
    const res = await server.request('PATCH', '/api/v1/users/me', {
      token: user.access,
      body: { last_name: null, avatar_url: 'https://example.com/a.png' },
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      first_name: 'Ada',
      last_name: null,
      avatar_url: 'https://example.com/a.png',
      username: user.input.username,
    })
    expect((await me(user.access)).body.last_name).toBeNull()
  })

  it('accepts PUT as the same partial update', async () => {
    const user = await registerUser(server)
    const res = await server.request('PUT', '/api/v1/users/me', {
      token: user.access,
      body: { first_name: 'Linus' },
    })
    expect(res.status).toBe(200)
    expect(res.body.first_name).toBe('Linus')
    expect(res.body.username).toBe(user.input.username)
  })

  it('answers 409 for a username another user has in any letter case, changing nothing', async () => {
    const taken = await registerUser(server)
    const user = await registerUser(server)
    const res = await server.request('PATCH', '/api/v1/users/me', {
      token: user.access,
      body: { username: taken.input.username.toUpperCase(), first_name: 'Changed' },
    })
    expectProblemShape(res, 409)
    expect(res.text).not.toMatch(/users_username|constraint|duplicate key/i)
    const after = await me(user.access)
    expect(after.body.username).toBe(user.input.username)
    expect(after.body.first_name).toBeNull()
  })

  it('answers 422 for a bad username, a non-http avatar or a null username, changing nothing', async () => {
    const user = await registerUser(server)
    for (const body of [
      { username: 'no spaces allowed' },
      { username: 'ab' },
      { avatar_url: 'javascript:alert(1)' },
      { username: null },
      { first_name: 'x'.repeat(101) },
    ]) {
      const res = await server.request('PATCH', '/api/v1/users/me', { token: user.access, body })
      expectProblemShape(res, 422)
      expect(res.body.errors.length).toBeGreaterThan(0)
    }
    expect((await me(user.access)).body.username).toBe(user.input.username)
  })

  it('cannot change roles, email or activity through the profile', async () => {
    const user = await registerUser(server)
    await server.request('PATCH', '/api/v1/users/me', {
      token: user.access,
      body: { roles: ['admin'], email: 'other@example.com', is_active: false, first_name: 'Eve' },
    })
    const after = await me(user.access)
    expect(after.body.roles).toEqual(user.body.user.roles)
    expect(after.body.email).toBe(user.input.email)
    expect(after.body.is_active).toBe(true)
  })
})

describe('PUT /users/me/password', () => {
  it('changes the password, keeps this session and ends the others', async () => {
    const user = await registerUser(server)
    const other = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    const res = await server.request('PUT', '/api/v1/users/me/password', {
      token: user.access,
      body: { current_password: user.input.password, new_password: 'a brand new password' },
    })
    expect(res.status).toBe(204)
    expect((await me(user.access)).status).toBe(200)
    expectProblemShape(await me(other.body.access_token), 401)
    const oldLogin = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    expectProblemShape(oldLogin, 401)
    const newLogin = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: 'a brand new password' },
    })
    expect(newLogin.status).toBe(200)
  })

  it('answers 422 for a wrong current password and keeps the old one', async () => {
    const user = await registerUser(server)
    const res = await server.request('PUT', '/api/v1/users/me/password', {
      token: user.access,
      body: { current_password: 'wrong password', new_password: 'a brand new password' },
    })
    expectProblemShape(res, 422)
    expect(res.body.errors[0].path).toBe('/current_password')
    expect(res.text).not.toContain('wrong password')
    const login = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    expect(login.status).toBe(200)
  })

  it('answers 422 for a new password that is too short, without echoing it', async () => {
    const user = await registerUser(server)
    const res = await server.request('PUT', '/api/v1/users/me/password', {
      token: user.access,
      body: { current_password: user.input.password, new_password: 'tiny' },
    })
    expectProblemShape(res, 422)
    expect(res.text).not.toContain('tiny')
    expect(res.text).not.toContain(user.input.password)
  })
})

describe('GET /users', () => {
  it('lists public profiles with pagination, without emails', async () => {
    const caller = await registerUser(server)
    for (let i = 0; i < 3; i++) await registerUser(server, { last_name: 'Paginated' })
    const res = await server.request('GET', '/api/v1/users?search=paginated&limit=2&page=1', {
      token: caller.access,
    })
    expect(res.status).toBe(200)
    expect(res.body.data).toHaveLength(2)
    expect(res.body.pagination).toEqual({ page: 1, limit: 2, total: 3, pages: 2 })
    expect(Object.keys(res.body.data[0]).sort()).toEqual(
      ['avatar_url', 'first_name', 'id', 'last_name', 'username'].sort(),
    )
    expect(res.text).not.toContain('@example.com')
    const page2 = await server.request('GET', '/api/v1/users?search=paginated&limit=2&page=2', {
      token: caller.access,
    })
    expect(page2.body.data).toHaveLength(1)
  })

  it('treats LIKE wildcards in the search as plain text', async () => {
    const caller = await registerUser(server)
    const res = await server.request('GET', '/api/v1/users?search=%25', { token: caller.access })
    expect(res.status).toBe(200)
    expect(res.body.pagination.total).toBe(0)
  })

  it('answers 422 for a limit over 100 or a page below 1, naming the parameter', async () => {
    const caller = await registerUser(server)
    const tooMany = await server.request('GET', '/api/v1/users?limit=101', { token: caller.access })
    expectProblemShape(tooMany, 422)
    expect(tooMany.body.errors[0].path).toBe('/limit')
    const pageZero = await server.request('GET', '/api/v1/users?page=0', { token: caller.access })
    expectProblemShape(pageZero, 422)
    expect(pageZero.body.errors[0].path).toBe('/page')
    const huge = await server.request('GET', '/api/v1/users?limit=99999999999999999999', {
      token: caller.access,
    })
    expectProblemShape(huge, 422)
    expect(huge.body.errors[0].path).toBe('/limit')
    const notNumber = await server.request('GET', '/api/v1/users?limit=ten', {
      token: caller.access,
    })
    expectProblemShape(notNumber, 422)
    expect(notNumber.body.errors[0].path).toBe('/limit')
  })

  it('answers 401 without a token', async () => {
    expectProblemShape(await server.request('GET', '/api/v1/users'), 401)
  })

  it('answers 403 to a user whose roles lack users.read', async () => {
    const user = await registerUser(server)
    await server.db.sql`delete from user_roles where user_id = ${user.id}`
    const fresh = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    const res = await server.request('GET', '/api/v1/users', { token: fresh.body.access_token })
    expectProblemShape(res, 403)
  })
})

describe('GET /users/:id', () => {
  it('returns a public profile', async () => {
    const caller = await registerUser(server)
    const other = await registerUser(server, { first_name: 'Katherine' })
    const res = await server.request('GET', `/api/v1/users/${other.id}`, { token: caller.access })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      id: other.id,
      username: other.input.username,
      first_name: 'Katherine',
      last_name: null,
      avatar_url: null,
    })
  })

  it('answers 404 for a deactivated user, as the list hides them', async () => {
    const caller = await registerUser(server)
    const gone = await registerUser(server)
    await server.db.sql`update users set is_active = false where id = ${gone.id}`
    const res = await server.request('GET', `/api/v1/users/${gone.id}`, { token: caller.access })
    expectProblemShape(res, 404)
  })

  it('answers 404 for an unknown id and 422 for a malformed one', async () => {
    const caller = await registerUser(server)
    const missing = await server.request('GET', `/api/v1/users/${crypto.randomUUID()}`, {
      token: caller.access,
    })
    expectProblemShape(missing, 404)
    const malformed = await server.request('GET', '/api/v1/users/123', { token: caller.access })
    expectProblemShape(malformed, 422)
  })
})
