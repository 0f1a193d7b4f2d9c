import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject, createTask } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

type User = Awaited<ReturnType<typeof registerUser>>

let server: TestServer
let admin: User
let owner: User
let manager: User
let member: User
let viewer: User
let outsider: User

beforeAll(async () => {
  server = await startServer()
  admin = await registerUser(server)
  ;[owner, manager, member, viewer, outsider] = (await Promise.all(
    Array.from({ length: 5 }, () => registerUser(server)),
  )) as [User, User, User, User, User]
}, 30_000)
afterAll(() => server.close(), 30_000)

const api = (method: string, path: string, token?: string, body?: unknown) =>
  server.request(method, `/api/v1${path}`, { token, body })

const teamProject = () =>
  createProject(server, owner, [
    [manager, 'manager'],
    [member, 'member'],
    [viewer, 'viewer'],
  ])

async function roleOf(projectId: string, userId: string) {
  const [row] = await server.db.sql<{ role: string }[]>`
    select role from project_members where project_id = ${projectId} and user_id = ${userId}
  `
  return row?.role
}

async function lastActivity(projectId: string) {
  const [row] = await server.db.sql<
    { action: string; user_id: string; entity_id: string; details: Record<string, unknown> }[]
  >`
    select action, user_id, entity_id, details
    from activity_log
    where project_id = ${projectId}
    order by created_at desc, id desc
    limit 1
  `
  return row
}

describe('GET /projects/:id/members', () => {
  it('lists the members in joining order with their names and roles, paginated', async () => {
    const project = await teamProject()
    const res = await api('GET', `/projects/${project.id}/members`, viewer.access)
    expect(res.status).toBe(200)
    expect(
      res.body.data.map((m: { user_id: string; role: string }) => [m.user_id, m.role]),
    ).toEqual([
      [owner.id, 'owner'],
      [manager.id, 'manager'],
      [member.id, 'member'],
      [viewer.id, 'viewer'],
    ])
    expect(res.body.data[0]).toMatchObject({
      username: owner.input.username,
      first_name: null,
      last_name: null,
    })
    expect(res.body.pagination).toEqual({ page: 1, limit: 20, total: 4, pages: 1 })
    const page = await api('GET', `/projects/${project.id}/members?limit=3&page=2`, viewer.access)
    expect(page.body.data.map((m: { user_id: string }) => m.user_id)).toEqual([viewer.id])
  }, 30_000)

  it('answers 403 to an outsider and 404 for an unknown project', async () => {
    const project = await teamProject()
    expectProblemShape(await api('GET', `/projects/${project.id}/members`, outsider.access), 403)
    expectProblemShape(
      await api('GET', `/projects/${crypto.randomUUID()}/members`, owner.access),
      404,
    )
  }, 30_000)
})

describe('POST /projects/:id/members', () => {
  it('adds a member (default role member), notifies them and logs it', async () => {
    const project = await teamProject()
    const joiner = await registerUser(server)
    const res = await api('POST', `/projects/${project.id}/members`, manager.access, {
      user_id: joiner.id,
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('location')).toBe(`/api/v1/projects/${project.id}/members/${joiner.id}`)
    expect(res.body).toMatchObject({
      user_id: joiner.id,
      username: joiner.input.username,
      role: 'member',
    })
    const notes = await server.db.sql`
      select user_id, type, entity_type, entity_id from notifications where user_id = ${joiner.id}
    `
    expect([...notes]).toEqual([
      {
        user_id: joiner.id,
        type: 'project_member_added',
        entity_type: 'project',
        entity_id: project.id,
      },
    ])
    expect(await lastActivity(project.id)).toMatchObject({
      action: 'member.added',
      user_id: manager.id,
      entity_id: joiner.id,
      details: { role: 'member' },
    })
    // The new member now sees the project.
    expect((await api('GET', `/projects/${project.id}`, joiner.access)).body.member_role).toBe(
      'member',
    )
  }, 30_000)

  it('ignores privileged fields: the project, the join time', async () => {
    const project = await teamProject()
    const other = await teamProject()
    const joiner = await registerUser(server)
    const res = await api('POST', `/projects/${project.id}/members`, owner.access, {
      user_id: joiner.id,
      project_id: other.id,
      joined_at: '2000-01-01T00:00:00.000Z',
    })
    expect(res.status).toBe(201)
    expect(res.body.joined_at.startsWith('2000')).toBe(false)
    expect(await roleOf(project.id, joiner.id)).toBe('member')
    expect(await roleOf(other.id, joiner.id)).toBeUndefined()
    const changed = await api(
      'PATCH',
      `/projects/${project.id}/members/${joiner.id}`,
      owner.access,
      {
        role: 'viewer',
        user_id: owner.id,
        joined_at: '2000-01-01T00:00:00.000Z',
      },
    )
    expect(changed.body).toMatchObject({
      user_id: joiner.id,
      role: 'viewer',
      joined_at: res.body.joined_at,
    })
    expect(await roleOf(project.id, owner.id)).toBe('owner')
  }, 30_000)

  it('answers 409 for an existing member and changes nothing', async () => {
    const project = await teamProject()
    const res = await api('POST', `/projects/${project.id}/members`, owner.access, {
      user_id: viewer.id,
      role: 'manager',
    })
    expectProblemShape(res, 409)
    expect(await roleOf(project.id, viewer.id)).toBe('viewer')
  }, 30_000)

  it('answers 422 for an unknown or deactivated user, the owner role or a bad role', async () => {
    const project = await teamProject()
    const gone = await registerUser(server)
    await server.db.sql`update users set is_active = false where id = ${gone.id}`
    const cases: [unknown, string][] = [
      [{ user_id: crypto.randomUUID() }, '/user_id'],
      [{ user_id: gone.id }, '/user_id'],
      [{ user_id: outsider.id, role: 'owner' }, '/role'],
      [{ user_id: outsider.id, role: 'boss' }, '/role'],
      [{ user_id: 'nope' }, '/user_id'],
      [{}, '/user_id'],
    ]
    for (const [body, path] of cases) {
      const res = await api('POST', `/projects/${project.id}/members`, owner.access, body)
      expectProblemShape(res, 422)
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path)
    }
    expect(await roleOf(project.id, gone.id)).toBeUndefined()
    expect(await roleOf(project.id, outsider.id)).toBeUndefined()
  }, 30_000)

  it('refuses members, viewers and outsiders; an admin may add', async () => {
    const project = await teamProject()
    const joiner = await registerUser(server)
    for (const user of [member, viewer, outsider])
      expectProblemShape(
        await api('POST', `/projects/${project.id}/members`, user.access, { user_id: joiner.id }),
        403,
      )
    expect(await roleOf(project.id, joiner.id)).toBeUndefined()
    const res = await api('POST', `/projects/${project.id}/members`, admin.access, {
      user_id: joiner.id,
      role: 'viewer',
    })
    expect(res.status).toBe(201)
  }, 30_000)

  it('does not notify a user who adds themselves (an admin)', async () => {
    const project = await teamProject()
    const res = await api('POST', `/projects/${project.id}/members`, admin.access, {
      user_id: admin.id,
      role: 'manager',
    })
    expect(res.status).toBe(201)
    const notes = await server.db.sql`
      select id from notifications where user_id = ${admin.id} and entity_id = ${project.id}
    `
    expect(notes).toHaveLength(0)
  }, 30_000)
})

describe('PATCH /projects/:id/members/:user_id', () => {
  it('lets a manager change a member’s role, and logs old and new', async () => {
    const project = await teamProject()
    const res = await api('PATCH', `/projects/${project.id}/members/${member.id}`, manager.access, {
      role: 'viewer',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ user_id: member.id, role: 'viewer' })
    expect(await lastActivity(project.id)).toMatchObject({
      action: 'member.role_changed',
      entity_id: member.id,
      details: { role: { old: 'member', new: 'viewer' } },
    })
    const put = await api('PUT', `/projects/${project.id}/members/${member.id}`, owner.access, {
      role: 'manager',
    })
    expect(put.body.role).toBe('manager')
  }, 30_000)

  it('keeps the owner: a manager gets 403, the owner and an admin 409 for a demotion', async () => {
    const project = await teamProject()
    const path = `/projects/${project.id}/members/${owner.id}`
    expectProblemShape(await api('PATCH', path, manager.access, { role: 'member' }), 403)
    expectProblemShape(await api('PATCH', path, owner.access, { role: 'manager' }), 409)
    expectProblemShape(await api('PATCH', path, admin.access, { role: 'viewer' }), 409)
    expect(await roleOf(project.id, owner.id)).toBe('owner')
  }, 30_000)

  it('hands ownership over when the owner sets another member’s role to owner', async () => {
    const project = await teamProject()
    expectProblemShape(
      await api('PATCH', `/projects/${project.id}/members/${member.id}`, manager.access, {
        role: 'owner',
      }),
      403,
    )
    const res = await api('PATCH', `/projects/${project.id}/members/${member.id}`, owner.access, {
      role: 'owner',
    })
    expect(res.status).toBe(200)
    expect(res.body.role).toBe('owner')
    expect(await roleOf(project.id, owner.id)).toBe('manager')
    const view = await api('GET', `/projects/${project.id}`, member.access)
    expect(view.body).toMatchObject({ owner_id: member.id, member_role: 'owner' })
    // An admin can hand it on again; there is always exactly one owner.
    await api('PATCH', `/projects/${project.id}/members/${viewer.id}`, admin.access, {
      role: 'owner',
    })
    const owners = await server.db.sql`
      select user_id from project_members where project_id = ${project.id} and role = 'owner'
    `
    expect([...owners]).toEqual([{ user_id: viewer.id }])
  }, 30_000)

  it('refuses members, viewers and outsiders; 404 for a non-member; 422 for a bad role', async () => {
    const project = await teamProject()
    const path = `/projects/${project.id}/members/${viewer.id}`
    for (const user of [member, viewer, outsider])
      expectProblemShape(await api('PATCH', path, user.access, { role: 'member' }), 403)
    expect(await roleOf(project.id, viewer.id)).toBe('viewer')
    expectProblemShape(
      await api('PATCH', `/projects/${project.id}/members/${outsider.id}`, owner.access, {
        role: 'member',
      }),
      404,
    )
    expectProblemShape(await api('PATCH', path, owner.access, { role: 'admin' }), 422)
    expectProblemShape(await api('PATCH', path, owner.access, {}), 422)
  }, 30_000)
})

describe('DELETE /projects/:id/members/:user_id', () => {
  it('lets anyone leave, including a viewer, and logs it', async () => {
    const project = await teamProject()
    const res = await api('DELETE', `/projects/${project.id}/members/${viewer.id}`, viewer.access)
    expect(res.status).toBe(204)
    expect(await roleOf(project.id, viewer.id)).toBeUndefined()
    expect(await lastActivity(project.id)).toMatchObject({
      action: 'member.removed',
      user_id: viewer.id,
      details: { left: true, role: 'viewer' },
    })
    expectProblemShape(await api('GET', `/projects/${project.id}`, viewer.access), 403)
  }, 30_000)

  it('lets a manager remove a member, clearing their task assignments', async () => {
    const project = await teamProject()
    const task = await createTask(server, project.id, owner, { assignee_id: member.id })
    const res = await api('DELETE', `/projects/${project.id}/members/${member.id}`, manager.access)
    expect(res.status).toBe(204)
    const [row] = await server.db.sql`select assignee_id, version from tasks where id = ${task.id}`
    expect(row).toEqual({ assignee_id: null, version: task.version + 1 })
  }, 30_000)

  it('never removes the owner: 409 for the owner and an admin, 403 for a manager', async () => {
    const project = await teamProject()
    const path = `/projects/${project.id}/members/${owner.id}`
    expectProblemShape(await api('DELETE', path, owner.access), 409)
    expectProblemShape(await api('DELETE', path, admin.access), 409)
    expectProblemShape(await api('DELETE', path, manager.access), 403)
    expect(await roleOf(project.id, owner.id)).toBe('owner')
  }, 30_000)

  it('refuses members and outsiders removing others; 404 for a non-member', async () => {
    const project = await teamProject()
    const path = `/projects/${project.id}/members/${viewer.id}`
    for (const user of [member, outsider])
      expectProblemShape(await api('DELETE', path, user.access), 403)
    expect(await roleOf(project.id, viewer.id)).toBe('viewer')
    expectProblemShape(
      await api('DELETE', `/projects/${project.id}/members/${outsider.id}`, owner.access),
      404,
    )
    // An outsider "leaving" a project they are not in is refused like any outsider.
    expectProblemShape(
      await api('DELETE', `/projects/${project.id}/members/${outsider.id}`, outsider.access),
      403,
    )
  }, 30_000)
})

// Needs concurrent sessions, which the single-session embedded database does not have.
describe.skipIf(!process.env.DATABASE_URL)('concurrent membership changes', () => {
  it('leave exactly one owner when the owner hands over to two members at once', async () => {
    for (let round = 0; round < 5; round += 1) {
      const project = await teamProject()
      const results = await Promise.all(
        [manager, member].map((user) =>
          api('PATCH', `/projects/${project.id}/members/${user.id}`, owner.access, {
            role: 'owner',
          }),
        ),
      )
      // The second hand-over runs after the first: its caller is no longer the owner.
      expect(results.map((r) => r.status).sort()).toEqual([200, 403])
      const owners = await server.db.sql<{ user_id: string }[]>`
        select pm.user_id from project_members pm
        join projects p on p.id = pm.project_id and p.owner_id = pm.user_id
        where pm.project_id = ${project.id} and pm.role = 'owner'
      `
      expect(owners).toHaveLength(1)
    }
  }, 60_000)

  it('add a user once when two managers add them at the same time', async () => {
    const project = await teamProject()
    const joiner = await registerUser(server)
    const results = await Promise.all(
      [owner, manager].map((user) =>
        api('POST', `/projects/${project.id}/members`, user.access, { user_id: joiner.id }),
      ),
    )
    expect(results.map((r) => r.status).sort()).toEqual([201, 409])
    const notes = await server.db.sql`select id from notifications where user_id = ${joiner.id}`
    expect(notes).toHaveLength(1)
  }, 30_000)
})
