import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

type User = Awaited<ReturnType<typeof registerUser>>

let server: TestServer
let admin: User
let developer: User

beforeAll(async () => {
  server = await startServer()
  admin = await registerUser(server)
  developer = await registerUser(server)
}, 30_000)
afterAll(() => server.close(), 30_000)

const api = (method: string, path: string, token?: string, body?: unknown) =>
  server.request(method, `/api/v1${path}`, { token, body })

const ROUTES: [string, string, unknown?][] = [
  ['GET', '/admin/users'],
  ['PATCH', `/admin/users/${crypto.randomUUID()}`, { is_active: true }],
  ['GET', '/admin/metrics'],
  ['GET', '/admin/logs'],
]

describe('admin routes', () => {
  it('answer 401 to anonymous callers and 403 to everyone without admin.access', async () => {
    const manager = await registerUser(server)
    await api('PATCH', `/admin/users/${manager.id}`, admin.access, { roles: ['manager'] })
    for (const [method, path, body] of ROUTES) {
      expectProblemShape(await api(method, path, undefined, body), 401)
      expectProblemShape(await api(method, path, developer.access, body), 403)
      expectProblemShape(await api(method, path, manager.access, body), 403)
    }
  }, 30_000)
})

describe('GET /admin/users', () => {
  it('lists every user with email, roles and is_active; search and filters narrow it', async () => {
    const tag = `zeta${Date.now().toString(36)}`
    const a = await registerUser(server, { email: `${tag}a@example.com`, first_name: 'Zed' })
    const b = await registerUser(server, { email: `${tag}b@example.com` })
    await server.db.sql`update users set is_active = false where id = ${b.id}`
    const res = await api('GET', `/admin/users?search=${tag}`, admin.access)
    expect(res.status).toBe(200)
    expect(res.body.data.map((u: { id: string }) => u.id)).toEqual([a.id, b.id])
    expect(res.body.data[0]).toMatchObject({
      email: `${tag}a@example.com`,
      roles: ['developer'],
      is_active: true,
      first_name: 'Zed',
    })
    expect(res.text).not.toMatch(/password/)
    const active = await api('GET', `/admin/users?search=${tag}&is_active=false`, admin.access)
    expect(active.body.data.map((u: { id: string }) => u.id)).toEqual([b.id])
    const admins = await api('GET', '/admin/users?role=admin', admin.access)
    expect(admins.body.data.map((u: { id: string }) => u.id)).toContain(admin.id)
    expect(admins.body.data.every((u: { roles: string[] }) => u.roles.includes('admin'))).toBe(true)
    const paged = await api('GET', '/admin/users?limit=1&page=2', admin.access)
    expect(paged.body.data).toHaveLength(1)
    expect(paged.body.pagination.total).toBeGreaterThanOrEqual(4)
  }, 30_000)

  it('answers 422 for an unknown role filter or a limit over 100', async () => {
    for (const query of ['role=boss', 'limit=101', 'is_active=perhaps'])
      expectProblemShape(await api('GET', `/admin/users?${query}`, admin.access), 422)
  }, 30_000)
})

describe('PATCH /admin/users/:id', () => {
  it('replaces roles; the new permissions apply to the user’s next request', async () => {
    const user = await registerUser(server)
    const res = await api('PATCH', `/admin/users/${user.id}`, admin.access, {
      roles: ['viewer'],
      id: crypto.randomUUID(),
      email: 'forged@example.com',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: user.id, roles: ['viewer'], email: user.input.email })
    // A viewer cannot create projects: the cached session was refreshed at once.
    expectProblemShape(await api('POST', '/projects', user.access, { name: 'No' }), 403)
    const back = await api('PATCH', `/admin/users/${user.id}`, admin.access, {
      roles: ['developer', 'manager'],
    })
    expect(back.body.roles).toEqual(['developer', 'manager'])
    expect((await api('POST', '/projects', user.access, { name: 'Yes' })).status).toBe(201)
    const [entry] = await server.db.sql`
      select action, details from activity_log
      where entity_type = 'user' and entity_id = ${user.id}
      order by created_at desc, id desc
      limit 1
    `
    expect(entry).toEqual({
      action: 'user.updated',
      details: { roles: { old: ['viewer'], new: ['developer', 'manager'] } },
    })
  }, 30_000)

  it('deactivation ends every session at once; reactivation lets the user sign in again', async () => {
    const user = await registerUser(server)
    const other = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    expect((await api('GET', '/users/me', user.access)).status).toBe(200)
    const res = await api('PATCH', `/admin/users/${user.id}`, admin.access, { is_active: false })
    expect(res.status).toBe(200)
    expect(res.body.is_active).toBe(false)
    expectProblemShape(await api('GET', '/users/me', user.access), 401)
    expectProblemShape(await api('GET', '/users/me', other.body.access_token), 401)
    const refresh = await server.request('POST', '/api/v1/auth/refresh', {
      body: { refresh_token: user.refresh },
    })
    expectProblemShape(refresh, 401)
    const [live] = await server.db.sql`
      select count(*)::int as n from user_sessions where user_id = ${user.id} and revoked_at is null
    `
    expect(live?.n).toBe(0)
    await api('PATCH', `/admin/users/${user.id}`, admin.access, { is_active: true })
    const login = await server.request('POST', '/api/v1/auth/login', {
      body: { email: user.input.email, password: user.input.password },
    })
    expect(login.status).toBe(200)
  }, 30_000)

  it('refuses an admin removing their own admin role or deactivating themselves', async () => {
    for (const body of [{ roles: ['manager'] }, { is_active: false }]) {
      const res = await api('PATCH', `/admin/users/${admin.id}`, admin.access, body)
      expectProblemShape(res, 422)
    }
    const me = await api('GET', '/users/me', admin.access)
    expect(me.body).toMatchObject({ roles: ['admin'], is_active: true })
    // Keeping the admin role while adding another is fine.
    const ok = await api('PATCH', `/admin/users/${admin.id}`, admin.access, {
      roles: ['admin', 'developer'],
    })
    expect(ok.body.roles).toEqual(['admin', 'developer'])
    await api('PATCH', `/admin/users/${admin.id}`, admin.access, { roles: ['admin'] })
  }, 30_000)

  it('answers 404 for an unknown user and 422 for unknown, empty or repeated roles', async () => {
    expectProblemShape(
      await api('PATCH', `/admin/users/${crypto.randomUUID()}`, admin.access, { is_active: true }),
      404,
    )
    for (const body of [{ roles: ['root'] }, { roles: [] }, { roles: ['viewer', 'viewer'] }])
      expectProblemShape(
        await api('PATCH', `/admin/users/${developer.id}`, admin.access, body),
        422,
      )
    expect((await api('GET', '/users/me', developer.access)).body.roles).toEqual(['developer'])
  }, 30_000)

  it('stops an admin who was demoted from acting on the cached session', async () => {
    const second = await registerUser(server)
    await api('PATCH', `/admin/users/${second.id}`, admin.access, { roles: ['admin'] })
    expect((await api('GET', '/admin/metrics', second.access)).status).toBe(200)
    await api('PATCH', `/admin/users/${second.id}`, admin.access, { roles: ['developer'] })
    expectProblemShape(await api('GET', '/admin/metrics', second.access), 403)
  }, 30_000)

  // Needs two concurrent sessions, which the single-session embedded database does not have.
  it.skipIf(!process.env.DATABASE_URL)(
    'leaves exactly one admin when the last two demote each other at the same time',
    async () => {
      const other = await startServer()
      try {
        const a = await registerUser(other)
        const b = await registerUser(other)
        const promote = await other.request('PATCH', `/api/v1/admin/users/${b.id}`, {
          token: a.access,
          body: { roles: ['admin'] },
        })
        expect(promote.status).toBe(200)
        for (let round = 0; round < 5; round += 1) {
          const results = await Promise.all([
            other.request('PATCH', `/api/v1/admin/users/${b.id}`, {
              token: a.access,
              body: { roles: ['developer'] },
            }),
            other.request('PATCH', `/api/v1/admin/users/${a.id}`, {
              token: b.access,
              body: { roles: ['developer'] },
            }),
          ])
          const statuses = results.map((r) => r.status).sort()
          expect(statuses[0]).toBe(200)
          expect(statuses[1]).toBeOneOf([403, 409])
          const admins = await other.db.sql`
            select ur.user_id from user_roles ur join roles r on r.id = ur.role_id
            join users u on u.id = ur.user_id
            where r.name = 'admin' and u.is_active
          `
          expect(admins).toHaveLength(1)
          // The survivor makes the other admin again for the next round.
          const survivor = admins[0]?.user_id === a.id ? a : b
          const loser = survivor === a ? b : a
          const again = await other.request('PATCH', `/api/v1/admin/users/${loser.id}`, {
            token: survivor.access,
            body: { roles: ['admin'] },
          })
          expect(again.status).toBe(200)
        }
      } finally {
        await other.close()
      }
    },
    60_000,
  )
})

describe('GET /admin/metrics', () => {
  it('reports uptime, requests by status class, latency percentiles, connections and rows', async () => {
    await api('GET', `/projects/${crypto.randomUUID()}`, developer.access)
    const res = await api('GET', '/admin/metrics', admin.access)
    expect(res.status).toBe(200)
    const m = res.body
    expect(m.uptime_seconds).toBeGreaterThan(0)
    expect(new Date(m.started_at).toISOString()).toBe(m.started_at)
    expect(m.requests.by_status['2xx']).toBeGreaterThan(0)
    expect(m.requests.by_status['4xx']).toBeGreaterThan(0)
    expect(m.requests.total).toBeGreaterThanOrEqual(
      m.requests.by_status['2xx'] + m.requests.by_status['4xx'],
    )
    const { p50, p95, p99, samples } = m.requests.latency_ms
    expect(samples).toBeGreaterThan(0)
    expect(p50).toBeGreaterThanOrEqual(0)
    expect(p95).toBeGreaterThanOrEqual(p50)
    expect(p99).toBeGreaterThanOrEqual(p95)
    expect(m.database.mode).toBe(process.env.DATABASE_URL ? 'postgres' : 'embedded')
    expect(m.database.pool_max).toBeGreaterThanOrEqual(1)
    const [counts] = await server.db.sql`
      select (select count(*) from users)::int as users, (select count(*) from projects)::int as projects
    `
    expect(m.rows).toMatchObject(counts as object)
    expect(m.memory.rss_bytes).toBeGreaterThan(0)
    const after = await api('GET', '/admin/metrics', admin.access)
    expect(after.body.requests.total).toBeGreaterThan(m.requests.total)
  }, 30_000)
})

describe('GET /admin/logs', () => {
  it('shows recent activity across the system, newest first, with filters and a cursor', async () => {
    const user = await registerUser(server)
    const project = await createProject(server, user)
    await api('DELETE', `/projects/${project.id}`, user.access)
    const res = await api('GET', `/admin/logs?user_id=${user.id}`, admin.access)
    expect(res.status).toBe(200)
    expect(res.body.data.map((e: { action: string }) => e.action)).toEqual(['project.deleted'])
    expect(res.body.data[0]).toMatchObject({
      entity_id: project.id,
      project_id: null,
      username: user.input.username,
    })
    const deleted = await api('GET', '/admin/logs?action=project.deleted', admin.access)
    expect(deleted.body.data.every((e: { action: string }) => e.action === 'project.deleted')).toBe(
      true,
    )
    const first = await api('GET', '/admin/logs?limit=2', admin.access)
    expect(first.body.data).toHaveLength(2)
    const next = await api(
      'GET',
      `/admin/logs?limit=2&cursor=${first.body.pagination.next_cursor}`,
      admin.access,
    )
    expect(next.status).toBe(200)
    expect(next.body.data[0].id).not.toBe(first.body.data[1].id)
    expect(next.body.data[0].created_at <= first.body.data[1].created_at).toBe(true)
    expectProblemShape(await api('GET', '/admin/logs?user_id=nope', admin.access), 422)
  }, 30_000)
})
