import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject, createTask } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// Every test here makes several requests on a shared, possibly cold machine: well above 5 s.

type User = Awaited<ReturnType<typeof registerUser>>

let server: TestServer
let admin: User
let owner: User
let manager: User
let member: User
let creator: User
let viewer: User
let outsider: User
let project: { id: string; name: string }

beforeAll(async () => {
  server = await startServer()
  // The first account of an empty database is the admin; it joins no project here.
  admin = await registerUser(server)
  owner = await registerUser(server)
  manager = await registerUser(server)
  member = await registerUser(server)
  creator = await registerUser(server)
  viewer = await registerUser(server)
  outsider = await registerUser(server)
  project = await createProject(server, owner, [
    [manager, 'manager'],
    [member, 'member'],
    [creator, 'member'],
    [viewer, 'viewer'],
  ])
}, 60_000)
afterAll(() => server.close(), 30_000)

const api = (method: string, path: string, token?: string, body?: unknown, headers = {}) =>
  server.request(method, `/api/v1${path}`, { token, body, headers })

async function newTask(by: User = creator, body: Record<string, unknown> = {}) {
  const res = await api('POST', '/tasks', by.access, {
    title: 'A task',
    project_id: project.id,
    ...body,
  })
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`)
  return res.body
}

const activity = (taskId: string) =>
  server.db.sql<{ action: string; user_id: string; details: Record<string, unknown> }[]>`
    select action, user_id, details from activity_log where entity_id = ${taskId} order by id
  `
const notifications = (taskId: string) =>
  server.db.sql<{ user_id: string; type: string; title: string }[]>`
    select user_id, type, title from notifications where entity_id = ${taskId} order by id
  `

describe('POST /tasks', () => {
  it('creates a task with defaults, a Location and an ETag, and records it', async () => {
    const res = await api('POST', '/tasks', creator.access, {
      title: 'Write the docs',
      project_id: project.id,
      description: 'All of them',
      tags: ['docs', 'docs', 'v1'],
      due_date: '2026-12-01T10:00:00+02:00',
      estimated_hours: 3,
    })
    expect(res.status).toBe(201)
    expect(res.headers.get('location')).toBe(`/api/v1/tasks/${res.body.id}`)
    expect(res.headers.get('etag')).toBe('"1"')
    expect(res.body).toMatchObject({
      title: 'Write the docs',
      description: 'All of them',
      project_id: project.id,
      project_name: project.name,
      assignee_id: null,
      assignee_name: null,
      created_by: creator.id,
      created_by_name: creator.input.username,
      status: 'todo',
      priority: 'medium',
      due_date: '2026-12-01T08:00:00.000Z',
      completed_at: null,
      estimated_hours: 3,
      actual_hours: null,
      tags: ['docs', 'v1'],
      version: 1,
    })
    expect((await activity(res.body.id)).map((a) => [a.action, a.user_id])).toEqual([
      ['task.created', creator.id],
    ])
  })

  it('notifies a new assignee, but not someone who assigns themselves', async () => {
    const task = await newTask(creator, { assignee_id: member.id })
    expect(task.assignee_name).toBe(member.input.username)
    const sent = await notifications(task.id)
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ user_id: member.id, type: 'task_assigned' })
    expect(sent[0]?.title).toContain('assigned')
    const own = await newTask(creator, { assignee_id: creator.id })
    expect(await notifications(own.id)).toHaveLength(0)
  })

  it('sets completed_at when created as done', async () => {
    const task = await newTask(creator, { status: 'done' })
    expect(typeof task.completed_at).toBe('string')
  })

  it('ignores privileged fields in the body', async () => {
    const forged = {
      id: '01900000-0000-7000-8000-000000000000',
      created_by: owner.id,
      version: 42,
      completed_at: '2020-01-01T00:00:00.000Z',
      created_at: '2020-01-01T00:00:00.000Z',
      project_name: 'Forged',
      owner_id: outsider.id,
    }
    const task = await newTask(creator, forged)
    expect(task.id).not.toBe(forged.id)
    expect(task).toMatchObject({ created_by: creator.id, version: 1, completed_at: null })
    expect(task.project_name).toBe(project.name)
    expect(task.created_at).not.toBe(forged.created_at)
    const [row] = await server.db.sql`select created_by, version from tasks where id = ${task.id}`
    expect(row).toMatchObject({ created_by: creator.id, version: 1 })
  })

  it('answers 422 on each invalid field and creates nothing', async () => {
    const before = await server.db.sql`select count(*)::int as n from tasks`
    const cases: [Record<string, unknown>, string][] = [
      [{ title: '' }, '/title'],
      [{ title: 'x'.repeat(256) }, '/title'],
      [{ project_id: 'not-a-uuid' }, '/project_id'],
      [{ project_id: '01900000-0000-7000-8000-000000000000' }, '/project_id'],
      [{ status: 'finished' }, '/status'],
      [{ priority: 'critical' }, '/priority'],
      [{ estimated_hours: -1 }, '/estimated_hours'],
      [{ estimated_hours: 1.5 }, '/estimated_hours'],
      [{ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, '/tags'],
      [{ tags: ['x'.repeat(51)] }, '/tags/0'],
      [{ due_date: 'tomorrow' }, '/due_date'],
      [{ assignee_id: outsider.id }, '/assignee_id'],
    ]
    for (const [fields, path] of cases) {
      const res = await api('POST', '/tasks', creator.access, {
        title: 'Valid',
        project_id: project.id,
        ...fields,
      })
      expectProblemShape(res, 422)
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path)
    }
    expect(await server.db.sql`select count(*)::int as n from tasks`).toEqual(before)
  })

  it('answers 401 without a token', async () => {
    const res = await api('POST', '/tasks', undefined, { title: 'x', project_id: project.id })
    expectProblemShape(res, 401)
    expect(res.headers.get('www-authenticate')).toBe('Bearer')
  })
})

describe('GET /tasks/:id', () => {
  it('answers the task with its ETag to any member', async () => {
    const task = await newTask(creator, { assignee_id: member.id })
    for (const who of [owner, manager, member, creator, viewer, admin]) {
      const res = await api('GET', `/tasks/${task.id}`, who.access)
      expect(res.status).toBe(200)
      expect(res.headers.get('etag')).toBe('"1"')
      expect(res.body).toEqual(task)
    }
  })

  it('answers 404 for an unknown task and 422 for a malformed id', async () => {
    expectProblemShape(
      await api('GET', '/tasks/01900000-0000-7000-8000-000000000000', member.access),
      404,
    )
    expectProblemShape(await api('GET', '/tasks/nope', member.access), 422)
  })
})

describe('PATCH /tasks/:id', () => {
  it('changes only the fields sent, clears nulls, bumps the version and records old and new', async () => {
    const task = await newTask(creator, {
      description: 'keep me?',
      tags: ['a'],
      estimated_hours: 5,
      priority: 'high',
    })
    const res = await api('PATCH', `/tasks/${task.id}`, member.access, {
      title: 'Renamed',
      description: null,
      estimated_hours: null,
      tags: null,
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toBe('"2"')
    expect(res.body).toMatchObject({
      title: 'Renamed',
      description: null,
      estimated_hours: null,
      tags: [],
      priority: 'high',
      status: 'todo',
      version: 2,
    })
    const log = await activity(task.id)
    expect(log.at(-1)).toMatchObject({
      action: 'task.updated',
      user_id: member.id,
      details: {
        title: { old: 'A task', new: 'Renamed' },
        description: { old: 'keep me?', new: null },
        estimated_hours: { old: 5, new: null },
        tags: { old: ['a'], new: [] },
      },
    })
    expect(Object.keys(log.at(-1)?.details ?? {}).sort()).toEqual(
      ['description', 'estimated_hours', 'tags', 'title'].sort(),
    )
  })

  it('accepts PUT as the same partial update', async () => {
    const task = await newTask(creator, { priority: 'low' })
    const res = await api('PUT', `/tasks/${task.id}`, member.access, { actual_hours: 2 })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ actual_hours: 2, priority: 'low', version: 2 })
  })

  it('changes nothing and keeps the version when no field differs', async () => {
    const task = await newTask(creator)
    const res = await api('PATCH', `/tasks/${task.id}`, member.access, { title: task.title })
    expect(res.status).toBe(200)
    expect(res.body.version).toBe(1)
    expect(await activity(task.id)).toHaveLength(1)
  })

  it('ignores privileged fields, project_id included', async () => {
    const other = await createProject(server, creator)
    const task = await newTask(creator)
    const res = await api('PATCH', `/tasks/${task.id}`, creator.access, {
      id: '01900000-0000-7000-8000-000000000000',
      project_id: other.id,
      created_by: owner.id,
      version: 99,
      completed_at: '2020-01-01T00:00:00.000Z',
      created_at: '2020-01-01T00:00:00.000Z',
      priority: 'urgent',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      id: task.id,
      project_id: project.id,
      created_by: creator.id,
      version: 2,
      completed_at: null,
      created_at: task.created_at,
      priority: 'urgent',
    })
  })

  it('sets completed_at on done and clears it when the status leaves done', async () => {
    const task = await newTask(creator, { assignee_id: member.id })
    const done = await api('PATCH', `/tasks/${task.id}`, owner.access, { status: 'done' })
    expect(done.body.status).toBe('done')
    expect(typeof done.body.completed_at).toBe('string')
    const retitled = await api('PATCH', `/tasks/${task.id}`, owner.access, { title: 'Still done' })
    expect(retitled.body.completed_at).toBe(done.body.completed_at)
    const reopened = await api('PATCH', `/tasks/${task.id}`, owner.access, {
      status: 'in_progress',
    })
    expect(reopened.body.completed_at).toBeNull()
    const completed = (await notifications(task.id)).filter((n) => n.type === 'task_completed')
    expect(completed.map((n) => n.user_id).sort()).toEqual([creator.id, member.id].sort())
  })

  it('answers 422 for an assignee outside the project and changes nothing', async () => {
    const task = await newTask(creator)
    const res = await api('PATCH', `/tasks/${task.id}`, creator.access, {
      title: 'Not applied',
      assignee_id: outsider.id,
    })
    expectProblemShape(res, 422)
    expect(res.body.errors[0].path).toBe('/assignee_id')
    expect((await api('GET', `/tasks/${task.id}`, creator.access)).body).toEqual(task)
  })

  it('answers 422 for invalid fields', async () => {
    const task = await newTask(creator)
    for (const body of [{ title: '' }, { status: null }, { tags: [1] }, { actual_hours: -2 }])
      expectProblemShape(await api('PATCH', `/tasks/${task.id}`, creator.access, body), 422)
  })
})

describe('ETag and If-Match', () => {
  it('applies a write whose If-Match is current and answers the new ETag', async () => {
    const task = await newTask(creator)
    const res = await api(
      'PATCH',
      `/tasks/${task.id}`,
      member.access,
      { title: 'B' },
      { 'if-match': '"1"' },
    )
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toBe('"2"')
    const any = await api(
      'PATCH',
      `/tasks/${task.id}`,
      member.access,
      { title: 'C' },
      { 'if-match': '*' },
    )
    expect(any.headers.get('etag')).toBe('"3"')
  })

  it('answers 412 to a stale, weak or malformed If-Match and changes nothing', async () => {
    const task = await newTask(creator)
    await api('PATCH', `/tasks/${task.id}`, member.access, { title: 'B' })
    for (const tag of ['"1"', 'W/"2"', '2', 'garbage']) {
      for (const [method, path, body] of [
        ['PATCH', `/tasks/${task.id}`, { title: 'stale' }],
        ['PUT', `/tasks/${task.id}/status`, { status: 'done' }],
        ['PUT', `/tasks/${task.id}/assign`, { assignee_id: member.id }],
        ['DELETE', `/tasks/${task.id}`, undefined],
      ] as const)
        expectProblemShape(await api(method, path, creator.access, body, { 'if-match': tag }), 412)
    }
    const now = await api('GET', `/tasks/${task.id}`, creator.access)
    expect(now.body).toMatchObject({ title: 'B', version: 2, status: 'todo', assignee_id: null })
  })

  it('lets exactly one of 20 concurrent writes with the same If-Match through', async () => {
    const task = await newTask(creator)
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api(
          'PATCH',
          `/tasks/${task.id}`,
          member.access,
          { title: `Writer ${i}` },
          { 'if-match': '"1"' },
        ),
      ),
    )
    const statuses = answers.map((a) => a.status).sort()
    expect(statuses.filter((s) => s === 200)).toHaveLength(1)
    expect(statuses.filter((s) => s === 412)).toHaveLength(19)
    const winner = answers.find((a) => a.status === 200)
    const now = await api('GET', `/tasks/${task.id}`, creator.access)
    expect(now.body).toMatchObject({ title: winner?.body.title, version: 2 })
    expect((await activity(task.id)).filter((a) => a.action === 'task.updated')).toHaveLength(1)
  }, 30_000)

  it('applies every one of 10 concurrent writes without If-Match, each bumping the version', async () => {
    const task = await newTask(creator)
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        api('PATCH', `/tasks/${task.id}`, member.access, { actual_hours: i + 1 }),
      ),
    )
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200))
    const now = await api('GET', `/tasks/${task.id}`, creator.access)
    expect(now.body.version).toBe(11)
  }, 30_000)
})

describe('PUT /tasks/:id/assign', () => {
  it('assigns a member, notifies them, records task.assigned, and unassigns with null', async () => {
    const task = await newTask(creator)
    const res = await api('PUT', `/tasks/${task.id}/assign`, manager.access, {
      assignee_id: viewer.id,
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      assignee_id: viewer.id,
      assignee_name: viewer.input.username,
      version: 2,
    })
    expect(await notifications(task.id)).toMatchObject([
      { user_id: viewer.id, type: 'task_assigned' },
    ])
    expect((await activity(task.id)).at(-1)).toMatchObject({
      action: 'task.assigned',
      details: { assignee_id: { old: null, new: viewer.id } },
    })
    const cleared = await api('PUT', `/tasks/${task.id}/assign`, manager.access, {
      assignee_id: null,
    })
    expect(cleared.body).toMatchObject({ assignee_id: null, assignee_name: null, version: 3 })
    expect(await notifications(task.id)).toHaveLength(1)
  })

  it('answers 422 for a non-member or a missing assignee_id', async () => {
    const task = await newTask(creator)
    const res = await api('PUT', `/tasks/${task.id}/assign`, creator.access, {
      assignee_id: outsider.id,
    })
    expectProblemShape(res, 422)
    expect(res.body.errors[0].path).toBe('/assignee_id')
    expectProblemShape(await api('PUT', `/tasks/${task.id}/assign`, creator.access, {}), 422)
  })
})

describe('PUT /tasks/:id/status', () => {
  it('moves the status, records task.status_changed and notifies creator and assignee on done', async () => {
    const task = await newTask(creator, { assignee_id: member.id })
    const res = await api('PUT', `/tasks/${task.id}/status`, member.access, { status: 'done' })
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('done')
    expect(typeof res.body.completed_at).toBe('string')
    expect((await activity(task.id)).at(-1)).toMatchObject({
      action: 'task.status_changed',
      details: { status: { old: 'todo', new: 'done' } },
    })
    // The assignee completed it: only the creator hears about it.
    expect((await notifications(task.id)).filter((n) => n.type === 'task_completed')).toMatchObject(
      [{ user_id: creator.id }],
    )
    const back = await api('PUT', `/tasks/${task.id}/status`, member.access, {
      status: 'in_review',
    })
    expect(back.body).toMatchObject({ status: 'in_review', completed_at: null })
  })

  it('answers 422 for an unknown status', async () => {
    const task = await newTask(creator)
    expectProblemShape(
      await api('PUT', `/tasks/${task.id}/status`, creator.access, { status: 'closed' }),
      422,
    )
  })
})

describe('GET /tasks?all=true', () => {
  it('lists every project’s tasks to an admin and is 403 for anyone else', async () => {
    const task = await newTask(creator, { title: 'Admin sees this' })
    const mine = await api('GET', `/tasks?project_id=${project.id}`, admin.access)
    expect(mine.body.data).toEqual([])
    const all = await api('GET', `/tasks?project_id=${project.id}&all=true&limit=100`, admin.access)
    expect(all.body.data.map((t: { id: string }) => t.id)).toContain(task.id)
    expectProblemShape(await api('GET', '/tasks?all=true', owner.access), 403)
  })
})

describe('DELETE /tasks/:id', () => {
  it('deletes the task, records task.deleted, then answers 404', async () => {
    const task = await newTask(creator)
    const res = await api('DELETE', `/tasks/${task.id}`, creator.access, undefined, {
      'if-match': '"1"',
    })
    expect(res.status).toBe(204)
    expect(res.text).toBe('')
    expectProblemShape(await api('GET', `/tasks/${task.id}`, creator.access), 404)
    expectProblemShape(await api('DELETE', `/tasks/${task.id}`, creator.access), 404)
    expect((await activity(task.id)).map((a) => a.action)).toEqual(['task.created', 'task.deleted'])
  })
})

describe('anonymous calls with invalid input', () => {
  // The shared guard decides whether authentication runs before validation (issue 5 moves it
  // there); these routes must answer exactly as /users/me does, and 401 once it has moved.
  it('are answered like every guarded route: 401 once the guard runs before validation', async () => {
    const probe = await server.request('PATCH', '/api/v1/users/me', { body: { username: '' } })
    const expected = probe.status === 422 ? 422 : 401
    expect([401, 422]).toContain(probe.status)
    const task = await createTask(server, project.id, creator)
    for (const [method, path, body] of [
      ['POST', '/tasks', { title: '' }],
      ['PATCH', `/tasks/${task.id}`, { title: '' }],
      ['PUT', `/tasks/${task.id}/status`, { status: 'nope' }],
      ['PUT', `/tasks/${task.id}/assign`, { assignee_id: 'nope' }],
      ['GET', '/tasks?limit=500', undefined],
      ['GET', '/tasks/not-a-uuid', undefined],
    ] as const)
      expectProblemShape(await api(method, path, undefined, body), expected)
  })
})

/**
 * Who may do what, over every route of the tasks module: each route must have a row here, so a
 * route added later without an authorization rule fails this test.
 */
describe('authorization matrix', () => {
  type Actor =
    | 'anonymous'
    | 'outsider'
    | 'viewer'
    | 'member'
    | 'creator'
    | 'manager'
    | 'owner'
    | 'admin'
  const actors: Actor[] = [
    'anonymous',
    'outsider',
    'viewer',
    'member',
    'creator',
    'manager',
    'owner',
    'admin',
  ]
  const tokenOf = (a: Actor) =>
    ({ anonymous: undefined, outsider, viewer, member, creator, manager, owner, admin })[a]?.access
  // An admin outside the project sees its tasks in lists only with all=true.
  const allOf = (actor: Actor) => (actor === 'admin' ? '&all=true' : '')
  const readers: Actor[] = ['viewer', 'member', 'creator', 'manager', 'owner', 'admin']
  const writers: Actor[] = ['member', 'creator', 'manager', 'owner', 'admin']
  const deleters: Actor[] = ['creator', 'manager', 'owner', 'admin']
  type Rule = {
    allowed: Actor[]
    ok: number
    request: (taskId: string, actor: Actor) => { body?: unknown; path: string }
    /** Lists never refuse: a caller outside the project just sees none of its tasks. */
    list?: true
  }
  const rules: Record<string, Rule> = {
    'GET /api/v1/tasks': {
      allowed: readers,
      ok: 200,
      list: true,
      request: (_, actor) => ({ path: `/tasks?project_id=${project.id}${allOf(actor)}` }),
    },
    'GET /api/v1/tasks/search': {
      allowed: readers,
      ok: 200,
      list: true,
      request: (_, actor) => ({
        path: `/tasks/search?search=matrix&project_id=${project.id}${allOf(actor)}`,
      }),
    },
    'POST /api/v1/tasks': {
      allowed: writers,
      ok: 201,
      request: () => ({ path: '/tasks', body: { title: 'matrix', project_id: project.id } }),
    },
    'GET /api/v1/tasks/:id': {
      allowed: readers,
      ok: 200,
      request: (id) => ({ path: `/tasks/${id}` }),
    },
    'PATCH /api/v1/tasks/:id': {
      allowed: writers,
      ok: 200,
      request: (id) => ({ path: `/tasks/${id}`, body: { title: crypto.randomUUID() } }),
    },
    'PUT /api/v1/tasks/:id': {
      allowed: writers,
      ok: 200,
      request: (id) => ({ path: `/tasks/${id}`, body: { title: crypto.randomUUID() } }),
    },
    'DELETE /api/v1/tasks/:id': {
      allowed: deleters,
      ok: 204,
      request: (id) => ({ path: `/tasks/${id}` }),
    },
    'PUT /api/v1/tasks/:id/assign': {
      allowed: writers,
      ok: 200,
      request: (id) => ({ path: `/tasks/${id}/assign`, body: { assignee_id: member.id } }),
    },
    'PUT /api/v1/tasks/:id/status': {
      allowed: writers,
      ok: 200,
      request: (id) => ({ path: `/tasks/${id}/status`, body: { status: 'in_progress' } }),
    },
  }
  // Sub-resources with their own modules and matrices.
  const elsewhere = /^\/api\/v1\/tasks\/:id\/(comments|attachments|activity)/

  it('has a rule for every route of the tasks module', () => {
    const routes = server.app.routes
      .filter((r) => r.path.startsWith('/api/v1/tasks') && !elsewhere.test(r.path))
      .map((r) => `${r.method} ${r.path}`)
      .sort()
    expect(routes).toEqual(Object.keys(rules).sort())
  })

  for (const [route, rule] of Object.entries(rules))
    it(`${route}: ${rule.allowed.join(', ')} may; others are refused`, async () => {
      const method = route.split(' ')[0] as string
      const seen: string[] = []
      const want: string[] = []
      for (const actor of actors) {
        const task = await createTask(server, project.id, creator, { title: 'matrix task' })
        const { path, body } = rule.request(task.id, actor)
        const res = await api(method, path, tokenOf(actor), body)
        const allowed = rule.allowed.includes(actor)
        let expected = allowed ? rule.ok : actor === 'anonymous' ? 401 : 403
        if (rule.list && actor === 'outsider') expected = 200
        seen.push(`${actor}:${res.status}`)
        want.push(`${actor}:${expected}`)
        if (res.status >= 400) expectProblemShape(res, res.status)
        if (rule.list && res.status === 200) {
          const ids = res.body.data.map((t: { project_id: string }) => t.project_id)
          expect(ids.every((p: string) => p === project.id)).toBe(true)
          if (actor === 'outsider') expect(res.body.data).toEqual([])
          else expect(res.body.pagination.total).toBeGreaterThan(0)
        }
      }
      expect(seen).toEqual(want)
    }, 30_000)
})
