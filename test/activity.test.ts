import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { insertActivity } from '../src/modules/activity/queries'
import { createProject, createTask } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

type User = Awaited<ReturnType<typeof registerUser>>
type Entry = { id: string; action: string; entity_id: string; created_at: string }

let server: TestServer
let admin: User
let owner: User
let viewer: User
let outsider: User

beforeAll(async () => {
  server = await startServer()
  admin = await registerUser(server)
  ;[owner, viewer, outsider] = (await Promise.all(
    Array.from({ length: 3 }, () => registerUser(server)),
  )) as [User, User, User]
}, 30_000)
afterAll(() => server.close(), 30_000)

const api = (method: string, path: string, token?: string, body?: unknown) =>
  server.request(method, `/api/v1${path}`, { token, body })

/** `count` entries in one statement, so they share created_at and only the id orders them. */
async function bulkEntries(projectId: string, count: number, action = 'task.updated') {
  await server.db.sql`
    insert into activity_log (user_id, project_id, action, entity_type, entity_id)
    select ${owner.id}, ${projectId}, ${action}, 'task', uuid_generate_v7()
    from generate_series(1, ${count})
  `
}

describe('GET /projects/:id/activity', () => {
  it('shows what happened, newest first, with the actor’s name and the changes', async () => {
    const project = await createProject(server, owner, [[viewer, 'viewer']])
    await api('PATCH', `/projects/${project.id}`, owner.access, { name: 'Renamed' })
    const res = await api('GET', `/projects/${project.id}/activity`, viewer.access)
    expect(res.status).toBe(200)
    expect(res.body.data.map((e: Entry) => e.action)).toEqual([
      'project.updated',
      'member.added',
      'project.created',
    ])
    expect(res.body.data[0]).toMatchObject({
      user_id: owner.id,
      username: owner.input.username,
      entity_type: 'project',
      entity_id: project.id,
      project_id: project.id,
      details: { name: { old: project.name, new: 'Renamed' } },
    })
    expect(typeof res.body.data[0].id).toBe('string')
    expect(new Date(res.body.data[0].created_at).toISOString()).toBe(res.body.data[0].created_at)
    expect(res.body.pagination).toEqual({
      page: 1,
      limit: 20,
      total: 3,
      pages: 1,
      next_cursor: null,
    })
  }, 30_000)

  it('pages by page and limit with totals', async () => {
    const project = await createProject(server, owner)
    await bulkEntries(project.id, 24)
    const res = await api('GET', `/projects/${project.id}/activity?page=3&limit=10`, owner.access)
    expect(res.body.data).toHaveLength(5)
    expect(res.body.pagination).toMatchObject({ page: 3, limit: 10, total: 25, pages: 3 })
    expect(res.body.pagination.next_cursor).toBeNull()
    const first = await api('GET', `/projects/${project.id}/activity?limit=10`, owner.access)
    expect(typeof first.body.pagination.next_cursor).toBe('string')
  }, 30_000)

  it('walks by cursor over every entry exactly once while new entries arrive', async () => {
    const project = await createProject(server, owner)
    await bulkEntries(project.id, 30)
    await bulkEntries(project.id, 17)
    const original = await server.db.sql<{ id: string }[]>`
      select id from activity_log where project_id = ${project.id}
    `
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const query: string = cursor ? `limit=7&cursor=${cursor}` : 'limit=7'
      const res = await api('GET', `/projects/${project.id}/activity?${query}`, owner.access)
      expect(res.status).toBe(200)
      if (cursor) expect(res.body.pagination).toMatchObject({ total: null, pages: null })
      seen.push(...res.body.data.map((e: Entry) => e.id))
      cursor = res.body.pagination.next_cursor
      await bulkEntries(project.id, 3, 'task.created')
      pages += 1
    } while (cursor && pages < 50)
    expect(seen).toHaveLength(original.length)
    expect(new Set(seen).size).toBe(seen.length)
    expect([...seen].sort()).toEqual(original.map((r) => r.id).sort())
  }, 30_000)

  it('answers 422 for a cursor it did not hand out and for a limit over 100', async () => {
    const project = await createProject(server, owner)
    for (const query of [
      'cursor=garbage',
      `cursor=${Buffer.from('["1","x"]').toString('base64url')}`,
      `cursor=${Buffer.from('[1e400,"00000000-0000-0000-0000-000000000000"]').toString('base64url')}`,
      'limit=101',
    ])
      expectProblemShape(
        await api('GET', `/projects/${project.id}/activity?${query}`, owner.access),
        422,
      )
  }, 30_000)

  it('answers 403 to an outsider, 404 for an unknown project; an admin may read', async () => {
    const project = await createProject(server, owner)
    expectProblemShape(await api('GET', `/projects/${project.id}/activity`, outsider.access), 403)
    expectProblemShape(
      await api('GET', `/projects/${crypto.randomUUID()}/activity`, owner.access),
      404,
    )
    expect((await api('GET', `/projects/${project.id}/activity`, admin.access)).status).toBe(200)
    expectProblemShape(await api('GET', `/projects/${project.id}/activity`), 401)
  }, 30_000)
})

describe('GET /tasks/:id/activity', () => {
  it('shows the task’s entries and those naming it in details.task_id, nothing else', async () => {
    const project = await createProject(server, owner, [[viewer, 'viewer']])
    const task = await createTask(server, project.id, owner)
    const other = await createTask(server, project.id, owner)
    const entry = (
      action: string,
      entityType: 'task' | 'comment',
      entityId: string,
      taskId?: string,
    ) =>
      insertActivity(server.db.sql, {
        user_id: owner.id,
        project_id: project.id,
        action,
        entity_type: entityType,
        entity_id: entityId,
        details: taskId ? { task_id: taskId } : null,
      })
    await entry('task.created', 'task', task.id)
    await entry('task.created', 'task', other.id)
    const comment = crypto.randomUUID()
    await entry('comment.created', 'comment', comment, task.id)
    await entry('comment.created', 'comment', crypto.randomUUID(), other.id)
    const res = await api('GET', `/tasks/${task.id}/activity`, viewer.access)
    expect(res.status).toBe(200)
    expect(res.body.data.map((e: Entry) => [e.action, e.entity_id])).toEqual([
      ['comment.created', comment],
      ['task.created', task.id],
    ])
    expect(res.body.pagination).toMatchObject({ total: 2, next_cursor: null })
  }, 30_000)

  it('answers 403 to an outsider and 404 for an unknown task', async () => {
    const project = await createProject(server, owner)
    const task = await createTask(server, project.id, owner)
    expectProblemShape(await api('GET', `/tasks/${task.id}/activity`, outsider.access), 403)
    expectProblemShape(
      await api('GET', `/tasks/${crypto.randomUUID()}/activity`, owner.access),
      404,
    )
    expectProblemShape(await api('GET', '/tasks/nope/activity', owner.access), 422)
  }, 30_000)
})
