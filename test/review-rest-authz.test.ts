import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject } from './factories'
import { expectProblemShape, startServer, type TestServer } from './helpers'
import { createTeam, type Person, type Team } from './team'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// An API token limited to some projects can do nothing outside them: not even what its owner
// could do there, such as leaving another project or starting a new one.

let server: TestServer
let team: Team
beforeAll(async () => {
  server = await startServer()
  team = await createTeam(server)
}, 60_000)
afterAll(() => server.close(), 30_000)

async function limitedToken(who: Person, projectIds: string[]) {
  const res = await server.request('POST', '/api/v1/tokens', {
    token: who.access,
    body: { name: 'limited', scopes: ['projects:read', 'projects:write'], project_ids: projectIds },
  })
  if (res.status !== 201) throw new Error(`token failed: ${res.status} ${res.text}`)
  return res.body.token as string
}

const isMember = async (projectId: string, userId: string) => {
  const rows = await server.db.sql`
    select 1 from project_members where project_id = ${projectId} and user_id = ${userId}
  `
  return rows.length === 1
}

describe('a project-limited API token', () => {
  it('answers 403 when it would make its owner leave another project, who stays a member', async () => {
    const own = await createProject(server, team.member)
    const token = await limitedToken(team.member, [own.id])
    const res = await server.request(
      'DELETE',
      `/api/v1/projects/${team.project.id}/members/${team.member.id}`,
      { token },
    )
    expectProblemShape(res, 403)
    expect(await isMember(team.project.id, team.member.id)).toBe(true)
  })

  it('still lets its owner leave one of its own projects', async () => {
    const project = await createProject(server, team.owner, [[team.viewer, 'viewer']])
    const token = await limitedToken(team.viewer, [project.id])
    const res = await server.request(
      'DELETE',
      `/api/v1/projects/${project.id}/members/${team.viewer.id}`,
      { token },
    )
    expect(res.status).toBe(204)
    expect(await isMember(project.id, team.viewer.id)).toBe(false)
  })

  it('answers 403 to POST /projects and creates nothing; an unlimited token may', async () => {
    const token = await limitedToken(team.owner, [team.project.id])
    const res = await server.request('POST', '/api/v1/projects', {
      token,
      body: { name: 'Made by a limited token' },
    })
    expectProblemShape(res, 403)
    const rows = await server.db.sql`select 1 from projects where name = 'Made by a limited token'`
    expect(rows.length).toBe(0)
    const open = await server.request('POST', '/api/v1/tokens', {
      token: team.owner.access,
      body: { name: 'open', scopes: ['projects:write'] },
    })
    const made = await server.request('POST', '/api/v1/projects', {
      token: open.body.token,
      body: { name: 'Made by an open token' },
    })
    expect(made.status).toBe(201)
  })

  it('gets no replay of its owner’s stored answer for a project it is not limited to', async () => {
    const other = await createProject(server, team.owner)
    const key = `replay-${crypto.randomUUID()}`
    const body = { title: 'Made by the session', project_id: other.id }
    const first = await server.request('POST', '/api/v1/tasks', {
      token: team.owner.access,
      headers: { 'idempotency-key': key },
      body,
    })
    expect(first.status).toBe(201)
    const open = await server.request('POST', '/api/v1/tokens', {
      token: team.owner.access,
      body: { name: 'a only', scopes: ['tasks:write'], project_ids: [team.project.id] },
    })
    const res = await server.request('POST', '/api/v1/tasks', {
      token: open.body.token,
      headers: { 'idempotency-key': key },
      body,
    })
    expectProblemShape(res, 403)
    expect(res.headers.get('idempotency-replayed')).toBeNull()
    // The token's own retries still replay its own answer, once.
    const inside = { title: 'Made by the token', project_id: team.project.id }
    const answers = []
    for (let i = 0; i < 2; i++)
      answers.push(
        await server.request('POST', '/api/v1/tasks', {
          token: open.body.token,
          headers: { 'idempotency-key': key },
          body: inside,
        }),
      )
    expect(answers.map((a) => a.status)).toEqual([201, 201])
    expect(answers[1]?.headers.get('idempotency-replayed')).toBe('true')
    expect(answers[1]?.body.id).toBe(answers[0]?.body.id)
  })
})

describe('an API token past its expires_at', () => {
  it('answers 401 at once, even while this instance still has it cached', async () => {
    const expiresAt = Date.now() + 1_500
    const created = await server.request('POST', '/api/v1/tokens', {
      token: team.owner.access,
      body: {
        name: 'short',
        scopes: ['tasks:read'],
        expires_at: new Date(expiresAt).toISOString(),
      },
    })
    expect(created.status).toBe(201)
    const token = created.body.token as string
    // Read once while valid: the principal is now cached (SESSION_CACHE_TTL_MS, 5 s by default).
    expect((await server.request('GET', '/api/v1/users/me', { token })).status).toBe(200)
    await Bun.sleep(Math.max(0, expiresAt - Date.now()) + 100)
    expectProblemShape(await server.request('GET', '/api/v1/users/me', { token }), 401)
  })
})
