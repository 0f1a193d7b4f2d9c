import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { uploadDirOf } from '../src/modules/projects/stored-files'
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
const dataDir = `/tmp/taskapi-projects-test-${process.pid}`

beforeAll(async () => {
  server = await startServer({ DATA_DIR: dataDir })
  // The first account of an empty database is the admin.
  admin = await registerUser(server)
  ;[owner, manager, member, viewer, outsider] = (await Promise.all(
    Array.from({ length: 5 }, () => registerUser(server)),
  )) as [User, User, User, User, User]
}, 30_000)
afterAll(async () => {
  await server.close()
  await rm(dataDir, { recursive: true, force: true })
}, 60_000)

const api = (method: string, path: string, token?: string, body?: unknown) =>
  server.request(method, `/api/v1${path}`, { token, body })

/**
 * What the shared auth guard answers an anonymous call with a bad body: 401 once it runs before
 * validation (issue 5, on main), 422 before that lands. Our routes must answer the same.
 */
async function anonymousBadBody() {
  const res = await api('PATCH', '/users/me', undefined, { username: '' })
  return res.status === 422 ? 422 : 401
}

async function teamProject(name?: string) {
  return createProject(
    server,
    owner,
    [
      [manager, 'manager'],
      [member, 'member'],
      [viewer, 'viewer'],
    ],
    { name },
  )
}

async function activityOf(projectId: string | null, entityId: string) {
  return server.db.sql<{ action: string; user_id: string; details: Record<string, unknown> }[]>`
    select action, user_id, details
    from activity_log
    where entity_id = ${entityId}
      and project_id is not distinct from ${projectId}
    order by created_at, id
  `
}

describe('POST /projects', () => {
  it('creates the project with the caller as owner, a Location and an activity entry', async () => {
    const res = await api('POST', '/projects', owner.access, {
      name: 'Apollo',
      description: 'To the moon',
      priority: 'high',
      start_date: '2026-12-01',
      due_date: '2027-01-31',
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('location')).toBe(`/api/v1/projects/${res.body.id}`)
    expect(res.body).toMatchObject({
      name: 'Apollo',
      description: 'To the moon',
      owner_id: owner.id,
      status: 'active',
      priority: 'high',
      start_date: '2026-12-01',
      due_date: '2027-01-31',
      completed_at: null,
      member_role: 'owner',
      task_counts: { todo: 0, in_progress: 0, in_review: 0, done: 0, cancelled: 0 },
    })
    const members = await api('GET', `/projects/${res.body.id}/members`, owner.access)
    expect(members.body.data).toMatchObject([{ user_id: owner.id, role: 'owner' }])
    expect((await activityOf(res.body.id, res.body.id)).map((a) => a.action)).toEqual([
      'project.created',
    ])
  }, 30_000)

  it('ignores privileged fields in the body', async () => {
    const forged = crypto.randomUUID()
    const res = await api('POST', '/projects', member.access, {
      name: 'Forged',
      id: forged,
      owner_id: outsider.id,
      created_at: '2000-01-01T00:00:00.000Z',
      updated_at: '2000-01-01T00:00:00.000Z',
      completed_at: '2000-01-01T00:00:00.000Z',
      member_role: 'viewer',
      task_counts: { todo: 99 },
    })
    expect(res.status).toBe(201)
    expect(res.body.id).not.toBe(forged)
    expect(res.body.owner_id).toBe(member.id)
    expect(res.body.member_role).toBe('owner')
    expect(res.body.completed_at).toBeNull()
    expect(res.body.task_counts.todo).toBe(0)
    expect(res.body.created_at.startsWith('2000')).toBe(false)
    const [row] = await server.db.sql`select owner_id from projects where id = ${forged}`
    expect(row).toBeUndefined()
  }, 30_000)

  it('stamps completed_at when created as completed', async () => {
    const res = await api('POST', '/projects', owner.access, { name: 'Done', status: 'completed' })
    expect(res.status).toBe(201)
    expect(new Date(res.body.completed_at).toISOString()).toBe(res.body.completed_at)
  }, 30_000)

  it('answers 422 for a missing or blank name, unknown status, impossible dates or due before start', async () => {
    const before = await server.db.sql`select count(*)::int as n from projects`
    const bodies: [unknown, string][] = [
      [{}, '/name'],
      [{ name: '   ' }, '/name'],
      [{ name: 'x'.repeat(256) }, '/name'],
      [{ name: 'A', status: 'paused' }, '/status'],
      [{ name: 'A', priority: 'extreme' }, '/priority'],
      [{ name: 'A', due_date: '2026-02-30' }, '/due_date'],
      [{ name: 'A', start_date: 'tomorrow' }, '/start_date'],
      [{ name: 'A', start_date: '2026-05-02', due_date: '2026-05-01' }, '/due_date'],
    ]
    for (const [body, path] of bodies) {
      const res = await api('POST', '/projects', owner.access, body)
      expectProblemShape(res, 422)
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path)
    }
    const after = await server.db.sql`select count(*)::int as n from projects`
    expect(after[0]?.n).toBe(before[0]?.n)
  }, 30_000)

  it('answers 401 to an anonymous caller, before validation wherever the shared guard does', async () => {
    expectProblemShape(await api('POST', '/projects', undefined, { name: 'Fine' }), 401)
    expectProblemShape(
      await api('POST', '/projects', undefined, { name: '' }),
      await anonymousBadBody(),
    )
  }, 30_000)

  it('answers 403 to a global viewer, who has no projects.write', async () => {
    const reader = await registerUser(server)
    const demoted = await api('PATCH', `/admin/users/${reader.id}`, admin.access, {
      roles: ['viewer'],
    })
    expect(demoted.status).toBe(200)
    expectProblemShape(await api('POST', '/projects', reader.access, { name: 'No' }), 403)
  }, 30_000)
})

describe('GET /projects', () => {
  it('lists only the caller’s projects, newest first, with role and task counts', async () => {
    const user = await registerUser(server)
    const first = await createProject(server, user, [], { name: 'First' })
    const second = await createProject(server, owner, [[user, 'viewer']], { name: 'Second' })
    await createProject(server, outsider, [], { name: 'Hidden' })
    const task = await createTask(server, second.id, owner)
    await createTask(server, second.id, owner)
    await server.db.sql`update tasks set status = 'done' where id = ${task.id}`
    const res = await api('GET', '/projects', user.access)
    expect(res.status).toBe(200)
    expect(res.body.data.map((p: { id: string }) => p.id)).toEqual([second.id, first.id])
    expect(res.body.data[0]).toMatchObject({
      member_role: 'viewer',
      task_counts: { todo: 1, in_progress: 0, in_review: 0, done: 1, cancelled: 0 },
    })
    expect(res.body.data[1].member_role).toBe('owner')
    expect(res.body.pagination).toEqual({ page: 1, limit: 20, total: 2, pages: 1 })
  }, 30_000)

  it('filters by status and search and paginates with right totals', async () => {
    const user = await registerUser(server)
    for (let i = 0; i < 5; i += 1)
      await api('POST', '/projects', user.access, {
        name: `Rocket ${i}`,
        status: i % 2 === 0 ? 'active' : 'archived',
      })
    await api('POST', '/projects', user.access, { name: 'Other', description: 'about rockets' })
    await api('POST', '/projects', user.access, { name: '100% done' })
    const search = await api('GET', '/projects?search=rocket&limit=2&page=2', user.access)
    expect(search.body.pagination).toEqual({ page: 2, limit: 2, total: 6, pages: 3 })
    expect(search.body.data).toHaveLength(2)
    const archived = await api('GET', '/projects?status=archived&search=Rocket', user.access)
    expect(archived.body.data.map((p: { name: string }) => p.name).sort()).toEqual([
      'Rocket 1',
      'Rocket 3',
    ])
    // LIKE wildcards are literal text.
    const percent = await api('GET', '/projects?search=100%25', user.access)
    expect(percent.body.data.map((p: { name: string }) => p.name)).toEqual(['100% done'])
    const none = await api('GET', '/projects?search=%25', user.access)
    expect(none.body.data.map((p: { name: string }) => p.name)).toEqual(['100% done'])
  }, 30_000)

  it('answers 422 for a limit over 100, a page of 0 or an unknown status', async () => {
    for (const query of ['limit=101', 'page=0', 'status=paused', 'all=maybe'])
      expectProblemShape(await api('GET', `/projects?${query}`, owner.access), 422)
  }, 30_000)

  it('lets an admin list every project with all=true, and nobody else', async () => {
    const hidden = await createProject(server, outsider, [], { name: 'Admin sees this' })
    const mine = await api('GET', '/projects?limit=100', admin.access)
    expect(mine.body.data.some((p: { id: string }) => p.id === hidden.id)).toBe(false)
    const all = await api('GET', '/projects?all=true&search=Admin%20sees', admin.access)
    expect(all.status).toBe(200)
    expect(all.body.data).toMatchObject([{ id: hidden.id, member_role: null }])
    expectProblemShape(await api('GET', '/projects?all=true', outsider.access), 403)
  }, 30_000)
})

describe('GET /projects/:id', () => {
  it('shows the project to each member with their own role', async () => {
    const project = await teamProject()
    for (const [user, role] of [
      [owner, 'owner'],
      [manager, 'manager'],
      [member, 'member'],
      [viewer, 'viewer'],
    ] as const) {
      const res = await api('GET', `/projects/${project.id}`, user.access)
      expect(res.status).toBe(200)
      expect(res.body.member_role).toBe(role)
    }
    const asAdmin = await api('GET', `/projects/${project.id}`, admin.access)
    expect(asAdmin.status).toBe(200)
    expect(asAdmin.body.member_role).toBeNull()
  }, 30_000)

  it('answers 403 to an outsider, 404 for an unknown id and 422 for a malformed one', async () => {
    const project = await teamProject()
    expectProblemShape(await api('GET', `/projects/${project.id}`, outsider.access), 403)
    expectProblemShape(await api('GET', `/projects/${crypto.randomUUID()}`, owner.access), 404)
    expectProblemShape(await api('GET', '/projects/not-a-uuid', owner.access), 422)
  }, 30_000)
})

describe('PATCH /projects/:id', () => {
  it('changes only the fields sent, clears nulls and logs old and new values', async () => {
    const res = await api('POST', '/projects', owner.access, {
      name: 'Gemini',
      description: 'Two seats',
      due_date: '2027-01-01',
    })
    const id = res.body.id
    const patched = await api('PATCH', `/projects/${id}`, manager.access, {})
    expectProblemShape(patched, 403)
    const changed = await api('PATCH', `/projects/${id}`, owner.access, {
      description: null,
      priority: 'urgent',
    })
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({
      name: 'Gemini',
      description: null,
      priority: 'urgent',
      due_date: '2027-01-01',
    })
    expect(changed.body.updated_at >= res.body.updated_at).toBe(true)
    const entries = await activityOf(id, id)
    expect(entries.at(-1)).toMatchObject({
      action: 'project.updated',
      user_id: owner.id,
      details: {
        description: { old: 'Two seats', new: null },
        priority: { old: 'medium', new: 'urgent' },
      },
    })
  }, 30_000)

  it('stamps completed_at on completed and clears it when the status leaves completed', async () => {
    const project = await teamProject()
    const done = await api('PUT', `/projects/${project.id}`, manager.access, {
      status: 'completed',
    })
    expect(done.status).toBe(200)
    expect(done.body.completed_at).not.toBeNull()
    const again = await api('PATCH', `/projects/${project.id}`, manager.access, { name: 'Renamed' })
    expect(again.body.completed_at).toBe(done.body.completed_at)
    const reopened = await api('PATCH', `/projects/${project.id}`, manager.access, {
      status: 'active',
    })
    expect(reopened.body.completed_at).toBeNull()
  }, 30_000)

  it('ignores privileged fields and writes no activity when nothing changed', async () => {
    const project = await teamProject()
    const before = await activityOf(project.id, project.id)
    const res = await api('PATCH', `/projects/${project.id}`, owner.access, {
      id: crypto.randomUUID(),
      owner_id: outsider.id,
      created_at: '2000-01-01T00:00:00.000Z',
      completed_at: '2000-01-01T00:00:00.000Z',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: project.id, owner_id: owner.id, completed_at: null })
    expect(await activityOf(project.id, project.id)).toEqual(before)
  }, 30_000)

  it('answers 422 for a blank name, a null name or a due date before the stored start date', async () => {
    const res = await api('POST', '/projects', owner.access, {
      name: 'Dated',
      start_date: '2026-06-01',
    })
    for (const body of [{ name: '' }, { name: null }, { due_date: '2026-05-31' }])
      expectProblemShape(await api('PATCH', `/projects/${res.body.id}`, owner.access, body), 422)
    const after = await api('GET', `/projects/${res.body.id}`, owner.access)
    expect(after.body).toMatchObject({ name: 'Dated', due_date: null })
  }, 30_000)

  it('refuses members, viewers and outsiders, and lets an admin edit', async () => {
    const project = await teamProject()
    for (const user of [member, viewer, outsider])
      expectProblemShape(
        await api('PATCH', `/projects/${project.id}`, user.access, { name: 'No' }),
        403,
      )
    const res = await api('PATCH', `/projects/${project.id}`, admin.access, { name: 'Admin' })
    expect(res.body.name).toBe('Admin')
    expectProblemShape(
      await api('PATCH', `/projects/${crypto.randomUUID()}`, owner.access, { name: 'x' }),
      404,
    )
  }, 30_000)
})

describe('DELETE /projects/:id', () => {
  it('removes tasks, comments, attachment rows and files, and only the owner’s or admin’s call does', async () => {
    const project = await teamProject()
    const task = await createTask(server, project.id, member)
    const other = await teamProject()
    const otherTask = await createTask(server, other.id, member)
    const root = uploadDirOf(server.config)
    const stored = async (taskId: string, name: string) => {
      await mkdir(join(root, taskId), { recursive: true })
      await writeFile(join(root, taskId, name), 'bytes')
      await server.db.sql`
        insert into task_attachments (task_id, filename, file_path, file_size, uploaded_by)
        values (${taskId}, 'a.txt', ${join(taskId, name)}, 5, ${member.id})
      `
    }
    await stored(task.id, 'one')
    await stored(task.id, 'two')
    await stored(otherTask.id, 'keep')
    // A path relative to DATA_DIR, and a stray file in the task's folder: both go.
    await mkdir(join(root, 'elsewhere'), { recursive: true })
    await writeFile(join(root, 'elsewhere', 'three'), 'bytes')
    await writeFile(join(root, task.id, 'stray'), 'bytes')
    await server.db.sql`
      insert into task_attachments (task_id, filename, file_path, file_size, uploaded_by)
      values (${task.id}, 'b.txt', ${join('uploads', 'elsewhere', 'three')}, 5, ${member.id})
    `
    // A row whose file is already gone, and one pointing outside the folder: both tolerated.
    await server.db.sql`
      insert into task_attachments (task_id, filename, file_path, file_size, uploaded_by)
      values
        (${task.id}, 'gone.txt', ${join(task.id, 'missing')}, 1, ${member.id}),
        (${task.id}, 'evil.txt', '../../etc/passwd', 1, ${member.id})
    `
    await server.db.sql`
      insert into task_comments (task_id, user_id, content) values (${task.id}, ${member.id}, 'hi')
    `
    for (const user of [manager, member, viewer, outsider])
      expectProblemShape(await api('DELETE', `/projects/${project.id}`, user.access), 403)

    const res = await api('DELETE', `/projects/${project.id}`, owner.access)
    expect(res.status).toBe(204)
    expect(res.text).toBe('')
    expectProblemShape(await api('GET', `/projects/${project.id}`, owner.access), 404)
    const [left] = await server.db.sql<{ tasks: number; comments: number; files: number }[]>`
      select
        (select count(*) from tasks where project_id = ${project.id})::int as tasks,
        (select count(*) from task_comments where task_id = ${task.id})::int as comments,
        (select count(*) from task_attachments where task_id = ${task.id})::int as files
    `
    expect(left).toEqual({ tasks: 0, comments: 0, files: 0 })
    const folders = await readdir(root)
    expect(folders).not.toContain(task.id)
    expect(folders).not.toContain('elsewhere')
    expect(await readdir(join(root, otherTask.id))).toEqual(['keep'])
    expect(await Bun.file('/etc/passwd').exists()).toBe(true)
    const [entry] = await activityOf(null, project.id)
    expect(entry).toMatchObject({ action: 'project.deleted', user_id: owner.id })
    expectProblemShape(await api('DELETE', `/projects/${project.id}`, owner.access), 404)
  }, 30_000)

  it('lets an admin delete any project', async () => {
    const project = await teamProject()
    expect((await api('DELETE', `/projects/${project.id}`, admin.access)).status).toBe(204)
  }, 30_000)
})

describe('authorization matrix', () => {
  type Actor = 'anonymous' | 'outsider' | 'viewer' | 'member' | 'manager' | 'owner' | 'admin'
  type Fixture = { projectId: string; taskId: string; targetId: string; joinerId: string }
  type Rule = {
    path: (f: Fixture) => string
    body?: (f: Fixture) => unknown
    /** Expected status per actor; `listed`/`hidden` for lists that filter instead of refusing. */
    expect: Record<Actor, number | 'listed' | 'hidden'>
  }
  const members = { viewer: 200, member: 200, manager: 200, owner: 200, admin: 200 }
  const readers = { anonymous: 401, outsider: 403, ...members } as const
  const editors = {
    anonymous: 401,
    outsider: 403,
    viewer: 403,
    member: 403,
    manager: 200,
    owner: 200,
    admin: 200,
  } as const
  const adminOnly = {
    anonymous: 401,
    outsider: 403,
    viewer: 403,
    member: 403,
    manager: 403,
    owner: 403,
    admin: 200,
  } as const
  const id = (f: Fixture) => `/projects/${f.projectId}`

  // Every route of the projects, members, activity and admin modules; a new one needs a row here.
  const RULES: Record<string, Rule> = {
    'GET /api/v1/projects': {
      path: () => '/projects?limit=100',
      expect: {
        anonymous: 401,
        outsider: 'hidden',
        viewer: 'listed',
        member: 'listed',
        manager: 'listed',
        owner: 'listed',
        admin: 'hidden',
      },
    },
    'POST /api/v1/projects': {
      path: () => '/projects',
      body: () => ({ name: 'Matrix' }),
      expect: {
        anonymous: 401,
        outsider: 201,
        viewer: 201,
        member: 201,
        manager: 201,
        owner: 201,
        admin: 201,
      },
    },
    'GET /api/v1/projects/:id': { path: id, expect: readers },
    'PATCH /api/v1/projects/:id': { path: id, body: () => ({ name: 'M' }), expect: editors },
    'PUT /api/v1/projects/:id': { path: id, body: () => ({ name: 'M' }), expect: editors },
    'DELETE /api/v1/projects/:id': {
      path: id,
      expect: { ...editors, manager: 403, owner: 204, admin: 204 },
    },
    'GET /api/v1/projects/:id/members': { path: (f) => `${id(f)}/members`, expect: readers },
    'POST /api/v1/projects/:id/members': {
      path: (f) => `${id(f)}/members`,
      body: (f) => ({ user_id: f.joinerId }),
      expect: { ...editors, manager: 201, owner: 201, admin: 201 },
    },
    'PATCH /api/v1/projects/:id/members/:user_id': {
      path: (f) => `${id(f)}/members/${f.targetId}`,
      body: () => ({ role: 'viewer' }),
      expect: editors,
    },
    'PUT /api/v1/projects/:id/members/:user_id': {
      path: (f) => `${id(f)}/members/${f.targetId}`,
      body: () => ({ role: 'viewer' }),
      expect: editors,
    },
    'DELETE /api/v1/projects/:id/members/:user_id': {
      path: (f) => `${id(f)}/members/${f.targetId}`,
      expect: { ...editors, manager: 204, owner: 204, admin: 204 },
    },
    'GET /api/v1/projects/:id/activity': { path: (f) => `${id(f)}/activity`, expect: readers },
    'GET /api/v1/tasks/:id/activity': {
      path: (f) => `/tasks/${f.taskId}/activity`,
      expect: readers,
    },
    'GET /api/v1/admin/users': { path: () => '/admin/users', expect: adminOnly },
    'PATCH /api/v1/admin/users/:id': {
      path: (f) => `/admin/users/${f.targetId}`,
      body: () => ({ is_active: true }),
      expect: adminOnly,
    },
    'GET /api/v1/admin/metrics': { path: () => '/admin/metrics', expect: adminOnly },
    'GET /api/v1/admin/logs': { path: () => '/admin/logs', expect: adminOnly },
  }
  const OURS = /^\/api\/v1\/(projects|admin)(\/|$)|\/activity$/

  it('has a rule for every route of these modules', () => {
    const routes = server.app.routes
      // Webhooks have their own matrix in test/webhooks.test.ts.
      .filter((r) => OURS.test(r.path) && !r.path.includes('/webhooks'))
      .map((r) => `${r.method} ${r.path}`)
    expect(routes.length).toBeGreaterThan(0)
    expect(routes.filter((r) => !RULES[r])).toEqual([])
  }, 30_000)

  it('answers each actor on each route as the rules say', async () => {
    const target = await registerUser(server)
    const tokens: Record<Actor, string | undefined> = {
      anonymous: undefined,
      outsider: outsider.access,
      viewer: viewer.access,
      member: member.access,
      manager: manager.access,
      owner: owner.access,
      admin: admin.access,
    }
    const failures: string[] = []
    for (const [route, rule] of Object.entries(RULES))
      for (const [actor, expected] of Object.entries(rule.expect) as [
        Actor,
        Rule['expect'][Actor],
      ][]) {
        // A fresh project per case, since a case may change or delete it (written in SQL: fast).
        const project = await createProject(server, { id: owner.id }, [
          [manager, 'manager'],
          [member, 'member'],
          [viewer, 'viewer'],
          [target, 'member'],
        ])
        const task = await createTask(server, project.id, owner)
        // Registering costs an argon2 hash: only the route that adds a member needs a new user.
        const joiner =
          route.startsWith('POST') && route.endsWith('/members')
            ? await registerUser(server)
            : target
        const f = {
          projectId: project.id,
          taskId: task.id,
          targetId: target.id,
          joinerId: joiner.id,
        }
        const method = route.split(' ')[0] as string
        const res = await api(method, rule.path(f), tokens[actor], rule.body?.(f))
        let got: number | string = res.status
        if (typeof expected === 'string' && res.status === 200)
          got = res.body.data.some((p: { id: string }) => p.id === project.id) ? 'listed' : 'hidden'
        if (got !== expected)
          failures.push(`${route} as ${actor}: expected ${expected}, got ${got}`)
        if (res.status >= 400 && !res.headers.get('content-type')?.includes('problem+json'))
          failures.push(`${route} as ${actor}: ${res.status} without problem+json`)
      }
    expect(failures).toEqual([])
  }, 120_000)
})

describe('OpenAPI', () => {
  it('documents every route of these modules with a summary, a tag, auth and titled schemas', async () => {
    const doc = (await server.request('GET', '/docs/json')).body
    const toOpenApi = (path: string) => path.replace(/:(\w+)/g, '{$1}')
    const ours = server.app.routes.filter(
      (r) =>
        /^\/api\/v1\/(projects|admin)(\/|$)|\/activity$/.test(r.path) &&
        !r.path.includes('/webhooks'),
    )
    expect(ours.length).toBe(17)
    for (const route of ours) {
      const op = doc.paths[toOpenApi(route.path)]?.[route.method.toLowerCase()]
      if (!op) throw new Error(`missing from the OpenAPI document: ${route.method} ${route.path}`)
      expect(op.summary.length).toBeGreaterThan(5)
      expect(op.tags.length).toBeGreaterThan(0)
      expect(op.security).toEqual([{ bearerAuth: [] }, { apiToken: [] }])
      expect(Object.keys(op.responses)).toContain('401')
      expect(Object.keys(op.responses)).toContain('403')
    }
    const text = JSON.stringify(doc)
    for (const title of ['Project', 'ProjectMember', 'ActivityEntry', 'AdminUser', 'AdminMetrics'])
      expect(text).toContain(`"title":"${title}"`)
  }, 30_000)
})
