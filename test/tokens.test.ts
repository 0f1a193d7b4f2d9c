import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { SCOPES, TOKEN_ROUTES } from '../src/modules/authz/token-scopes'
import { ScopeName } from '../src/modules/tokens/model'
import { createProject, createTask } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'
import { createTeam, type Team } from './team'
import { subscribedClient } from './ws'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let team: Team
beforeAll(async () => {
  server = await startServer()
  team = await createTeam(server)
}, 60_000)
afterAll(() => server.close(), 30_000)

type Someone = { access: string }

async function newToken(user: Someone, body: Record<string, unknown>) {
  const res = await server.request('POST', '/api/v1/tokens', { token: user.access, body })
  if (res.status !== 201) throw new Error(`token create failed: ${res.status} ${res.text}`)
  return res.body as { id: string; token: string; prefix: string }
}

const allScopes = [...SCOPES]
const random = () => crypto.randomUUID()

/** The routes the auth macro guards (marked bearer-secured), plus the WebSocket upgrade. */
const guardedRoutes = () =>
  server.app.routes
    .filter((r) => (r.hooks.detail?.security?.length ?? 0) > 0 || r.path === '/ws')
    .filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS')
    .map((r) => `${r.method} ${r.path}`)

describe('API tokens: create, list, revoke', () => {
  it('shows the secret once, stores only its hash, and lists tokens without it', async () => {
    const res = await server.request('POST', '/api/v1/tokens', {
      token: team.member.access,
      body: { name: 'CI', scopes: ['tasks:read'] },
    })
    expect(res.status).toBe(201)
    expect(res.body.token).toMatch(/^tapi_[A-Za-z0-9_-]{43}$/)
    expect(res.body.prefix).toBe(res.body.token.slice(0, 12))
    expect(res.body).toMatchObject({ name: 'CI', scopes: ['tasks:read'], project_ids: null })
    expect(res.body.last_used_at).toBeNull()
    const [row] = await server.db.sql<{ token_hash: string }[]>`
      select token_hash from api_tokens where id = ${res.body.id}
    `
    expect(row?.token_hash).toMatch(/^[0-9a-f]{64}$/)
    expect(row?.token_hash).not.toContain(res.body.token.slice(5, 20))
    const list = await server.request('GET', '/api/v1/tokens', { token: team.member.access })
    expect(list.status).toBe(200)
    const listed = list.body.find((t: { id: string }) => t.id === res.body.id)
    expect(listed).toMatchObject({ name: 'CI', prefix: res.body.prefix })
    expect(listed.token).toBeUndefined()
    expect(JSON.stringify(list.body)).not.toContain(res.body.token)
    // Another user's list does not show it.
    const other = await server.request('GET', '/api/v1/tokens', { token: team.viewer.access })
    expect(other.body.some((t: { id: string }) => t.id === res.body.id)).toBe(false)
  })

  it('refuses bad input with 422 and changes nothing', async () => {
    const before = await server.db.sql`select count(*)::int as n from api_tokens`
    const cases: Record<string, unknown>[] = [
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['root'] },
      { name: '', scopes: ['tasks:read'] },
      { name: 'x', scopes: ['tasks:read'], expires_at: '2001-01-01T00:00:00Z' },
      { name: 'x', scopes: ['tasks:read'], project_ids: [team.project.id, random()] },
    ]
    for (const body of cases) {
      const res = await server.request('POST', '/api/v1/tokens', {
        token: team.member.access,
        body,
      })
      expectProblemShape(res, 422)
    }
    // The owner is not a member of a project they name: 422 (an outsider cannot scope into it).
    const outsider = await server.request('POST', '/api/v1/tokens', {
      token: team.outsider.access,
      body: { name: 'x', scopes: ['tasks:read'], project_ids: [team.project.id] },
    })
    expectProblemShape(outsider, 422)
    const after = await server.db.sql`select count(*)::int as n from api_tokens`
    expect(after).toEqual(before)
  })

  it('stops working at once when revoked; another user cannot revoke it', async () => {
    const { id, token } = await newToken(team.member, { name: 'r', scopes: ['tasks:read'] })
    expect((await server.request('GET', '/api/v1/users/me', { token })).status).toBe(200)
    const foreign = await server.request('DELETE', `/api/v1/tokens/${id}`, {
      token: team.viewer.access,
    })
    expectProblemShape(foreign, 404)
    expect((await server.request('GET', '/api/v1/users/me', { token })).status).toBe(200)
    const revoked = await server.request('DELETE', `/api/v1/tokens/${id}`, {
      token: team.member.access,
    })
    expect(revoked.status).toBe(204)
    expectProblemShape(await server.request('GET', '/api/v1/users/me', { token }), 401)
    const list = await server.request('GET', '/api/v1/tokens', { token: team.member.access })
    expect(list.body.some((t: { id: string }) => t.id === id)).toBe(false)
  })

  it('answers 401 for an unknown or expired token', async () => {
    const unknown = `tapi_${'A'.repeat(43)}`
    expectProblemShape(await server.request('GET', '/api/v1/users/me', { token: unknown }), 401)
    const { id, token } = await newToken(team.member, { name: 'e', scopes: ['tasks:read'] })
    await server.db
      .sql`update api_tokens set expires_at = now() - interval '1 second' where id = ${id}`
    expectProblemShape(await server.request('GET', '/api/v1/users/me', { token }), 401)
  })

  it('stops the token of a deactivated owner at once', async () => {
    const worker = await registerUser(server)
    const { token } = await newToken(worker, { name: 'd', scopes: ['users:read'] })
    expect((await server.request('GET', '/api/v1/users', { token })).status).toBe(200)
    const off = await server.request('PATCH', `/api/v1/admin/users/${worker.id}`, {
      token: team.admin.access,
      body: { is_active: false },
    })
    expect(off.status).toBe(200)
    expectProblemShape(await server.request('GET', '/api/v1/users', { token }), 401)
  })

  it('lets the token of a reactivated owner in again at once', async () => {
    const worker = await registerUser(server)
    const { token } = await newToken(worker, { name: 'r', scopes: ['users:read'] })
    const setActive = async (is_active: boolean) => {
      const res = await server.request('PATCH', `/api/v1/admin/users/${worker.id}`, {
        token: team.admin.access,
        body: { is_active },
      })
      expect(res.status).toBe(200)
    }
    await setActive(false)
    // The refusal is what this instance now holds for the token.
    expectProblemShape(await server.request('GET', '/api/v1/users', { token }), 401)
    await setActive(true)
    expect((await server.request('GET', '/api/v1/users', { token })).status).toBe(200)
    await setActive(false)
    expectProblemShape(await server.request('GET', '/api/v1/users', { token }), 401)
  })

  it('writes last_used_at on use, at most once a minute', async () => {
    const { id, token } = await newToken(team.member, { name: 'u', scopes: ['tasks:read'] })
    const stamp = async () => {
      const [row] = await server.db.sql<{ last_used_at: string | null; xmin: string }[]>`
        select last_used_at, xmin::text from api_tokens where id = ${id}
      `
      return row
    }
    expect((await stamp())?.last_used_at).toBeNull()
    expect((await server.request('GET', '/api/v1/users/me', { token })).status).toBe(200)
    let first = await stamp()
    for (let i = 0; i < 50 && !first?.last_used_at; i += 1) {
      await Bun.sleep(20)
      first = await stamp()
    }
    expect(first?.last_used_at).not.toBeNull()
    for (let i = 0; i < 5; i += 1)
      expect((await server.request('GET', '/api/v1/tasks', { token })).status).toBe(200)
    await Bun.sleep(100)
    // Same timestamp and the same row version: no write for the later requests.
    expect(await stamp()).toEqual(first)
  })
})

describe('API tokens: scopes × routes', () => {
  it('gives every guarded route a scope, or closes it, on purpose', () => {
    const unlisted = guardedRoutes().filter((route) => !(route in TOKEN_ROUTES))
    expect(unlisted).toEqual([])
    const stale = Object.keys(TOKEN_ROUTES).filter((route) => !guardedRoutes().includes(route))
    expect(stale).toEqual([])
    const documented = ScopeName.anyOf.map((literal: { const: string }) => literal.const)
    expect(documented).toEqual(allScopes)
  })

  it('answers 403 naming the missing scope, and lets the scope through', async () => {
    const tokens = new Map<string, string>()
    for (const scope of allScopes) {
      const all = await newToken(team.owner, {
        name: `all but ${scope}`,
        scopes: allScopes.filter((s) => s !== scope),
      })
      tokens.set(`without ${scope}`, all.token)
      tokens.set(scope, (await newToken(team.owner, { name: scope, scopes: [scope] })).token)
    }
    const everything = (await newToken(team.owner, { name: 'all', scopes: allScopes })).token
    const failures: string[] = []
    for (const [route, access] of Object.entries(TOKEN_ROUTES)) {
      if (route === 'GET /ws') continue
      const [method, pattern] = route.split(' ') as [string, string]
      // Random ids: a route that lets the token through answers 404 or 422, never 401 or 403.
      const path = pattern.replace(/:[a-z_]+/g, random)
      const body = ['GET', 'DELETE'].includes(method) ? undefined : {}
      if (access === 'closed') {
        const res = await server.request(method, path, { token: everything, body })
        if (res.status !== 403 || !/API tokens cannot use/.test(res.body?.detail))
          failures.push(`${route} closed: ${res.status} ${res.text}`)
        continue
      }
      const allowed = access === 'any' ? everything : (tokens.get(access) as string)
      const ok = await server.request(method, path, { token: allowed, body })
      if (ok.status === 401 || ok.status === 403)
        failures.push(`${route} with ${access}: ${ok.status} ${ok.text}`)
      if (access === 'any') continue
      const res = await server.request(method, path, {
        token: tokens.get(`without ${access}`),
        body,
      })
      if (res.status !== 403 || !String(res.body?.detail).includes(access))
        failures.push(`${route} without ${access}: ${res.status} ${res.text}`)
    }
    expect(failures).toEqual([])
  }, 120_000)

  it('refuses an admin’s token on /admin/* and any token on /tokens with 403', async () => {
    const admin = (await newToken(team.admin, { name: 'adm', scopes: allScopes })).token
    for (const [method, path] of [
      ['GET', '/api/v1/admin/users'],
      ['GET', '/api/v1/admin/metrics'],
      ['GET', '/api/v1/tokens'],
      ['POST', '/api/v1/tokens'],
    ] as const) {
      const body = method === 'POST' ? { name: 'x', scopes: ['tasks:read'] } : undefined
      expectProblemShape(await server.request(method, path, { token: admin, body }), 403)
    }
    const count = await server.db.sql`select count(*)::int as n from api_tokens where name = 'x'`
    expect(count[0]?.n).toBe(0)
  })

  it('never exceeds its owner’s current rights', async () => {
    const viewerToken = (await newToken(team.viewer, { name: 'v', scopes: allScopes })).token
    const res = await server.request('POST', '/api/v1/tasks', {
      token: viewerToken,
      body: { title: 'not allowed', project_id: team.project.id },
    })
    expectProblemShape(res, 403)
    const outsiderToken = (await newToken(team.outsider, { name: 'o', scopes: allScopes })).token
    expectProblemShape(
      await server.request('GET', `/api/v1/projects/${team.project.id}`, { token: outsiderToken }),
      403,
    )
    // The member's token writes as the member could.
    const memberToken = (await newToken(team.member, { name: 'm', scopes: ['tasks:write'] })).token
    const made = await server.request('POST', '/api/v1/tasks', {
      token: memberToken,
      body: { title: 'by token', project_id: team.project.id },
    })
    expect(made.status).toBe(201)
  })
})

describe('API tokens on the WebSocket', () => {
  it('needs projects:read, stays open past the sweep, gets events and closes on revocation', async () => {
    const without = await newToken(team.member, { name: 'ws-no', scopes: ['tasks:read'] })
    const refused = await fetch(`${server.url}/ws`, {
      headers: { authorization: `Bearer ${without.token}` },
    })
    expect(refused.status).toBe(403)
    const withScope = await newToken(team.member, { name: 'ws', scopes: ['projects:read'] })
    const client = await subscribedClient(server, withScope.token, team.project.id)
    try {
      // The expiry sweep runs every second: an API token is not a JWT and must not look expired.
      await Bun.sleep(1_500)
      await createTaskThroughApi('Seen live')
      const event = await client.next((f) => f.event === 'task.created')
      expect(event.data.task.title).toBe('Seen live')
      expect(
        (
          await server.request('DELETE', `/api/v1/tokens/${withScope.id}`, {
            token: team.member.access,
          })
        ).status,
      ).toBe(204)
      expect((await client.closed).code).toBe(4401)
    } finally {
      client.close()
    }
  }, 30_000)
})

async function createTaskThroughApi(title: string) {
  const res = await server.request('POST', '/api/v1/tasks', {
    token: team.owner.access,
    body: { title, project_id: team.project.id },
  })
  expect(res.status).toBe(201)
}

describe('API tokens: project_ids', () => {
  it('limits reads, lists, searches and writes to the listed projects', async () => {
    const other = await createProject(server, team.owner, [[team.member, 'member']])
    const inside = await createTask(server, team.project.id, team.owner, { title: 'Zebra inside' })
    const outside = await createTask(server, other.id, team.owner, { title: 'Zebra outside' })
    const { token } = await newToken(team.owner, {
      name: 'limited',
      scopes: allScopes,
      project_ids: [team.project.id],
    })
    const projects = await server.request('GET', '/api/v1/projects', { token })
    expect(projects.status).toBe(200)
    expect(projects.body.data.map((p: { id: string }) => p.id)).toEqual([team.project.id])
    expect(projects.body.pagination.total).toBe(1)
    const tasks = await server.request('GET', '/api/v1/tasks?limit=100', { token })
    const taskIds = tasks.body.data.map((t: { id: string }) => t.id)
    expect(taskIds).toContain(inside.id)
    expect(taskIds).not.toContain(outside.id)
    const search = await server.request('GET', '/api/v1/tasks/search?search=Zebra&limit=100', {
      token,
    })
    expect(search.status).toBe(200)
    expect(search.body.data.map((t: { id: string }) => t.id)).toEqual([inside.id])
    for (const [method, path, body] of [
      ['GET', `/api/v1/projects/${other.id}`, undefined],
      ['GET', `/api/v1/projects/${other.id}/members`, undefined],
      ['GET', `/api/v1/tasks/${outside.id}`, undefined],
      ['GET', `/api/v1/tasks/${outside.id}/comments`, undefined],
      ['PATCH', `/api/v1/tasks/${outside.id}`, { title: 'renamed' }],
      ['POST', '/api/v1/tasks', { title: 'no', project_id: other.id }],
      ['GET', `/api/v1/events?project_id=${other.id}`, undefined],
    ] as const) {
      const res = await server.request(method, path, { token, body })
      try {
        expectProblemShape(res, 403)
      } catch (error) {
        throw new Error(`${method} ${path}: ${(error as Error).message}`)
      }
    }
    expect((await server.request('GET', `/api/v1/tasks/${inside.id}`, { token })).status).toBe(200)
  })

  it('limits an admin owner’s all=true lists too', async () => {
    await createProject(server, team.admin)
    const { token } = await newToken(team.admin, {
      name: 'admin limited',
      scopes: allScopes,
      project_ids: [(await createProject(server, team.admin)).id],
    })
    const projects = await server.request('GET', '/api/v1/projects?all=true', { token })
    expect(projects.status).toBe(200)
    expect(projects.body.data).toHaveLength(1)
    const tasks = await server.request('GET', '/api/v1/tasks?all=true', { token })
    expect(tasks.status).toBe(200)
    expectProblemShape(
      await server.request('GET', `/api/v1/projects/${team.project.id}`, { token }),
      403,
    )
  })
})
