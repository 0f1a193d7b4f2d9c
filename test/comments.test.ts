import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject, createTask } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'
import { createTeam, type Person, type Team } from './team'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let team: Team
beforeAll(async () => {
  server = await startServer()
  team = await createTeam(server)
}, 60_000)
afterAll(() => server.close(), 30_000)

const commentsOf = (taskId: string) => `/api/v1/tasks/${taskId}/comments`
const post = (taskId: string, who: Person | undefined, body: unknown) =>
  server.request('POST', commentsOf(taskId), { token: who?.access, body })
const list = (taskId: string, who: Person, query = '') =>
  server.request('GET', `${commentsOf(taskId)}${query}`, { token: who.access })

async function comment(taskId: string, who: Person, content: string) {
  const res = await post(taskId, who, { content })
  if (res.status !== 201) throw new Error(`comment failed: ${res.status} ${res.text}`)
  return res.body as { id: string; content: string; updated_at: string }
}

const newTask = (fields: { assignee_id?: string } = {}) =>
  createTask(server, team.project.id, team.owner, fields)

async function notificationsOf(userId: string, taskId: string) {
  const rows = await server.db.sql<{ type: string; message: string }[]>`
    select type, message
    from notifications
    where user_id = ${userId}
      and entity_id = ${taskId}
    order by created_at, id
  `
  return [...rows]
}

describe('POST /tasks/:id/comments', () => {
  it('adds a comment by a member and answers 201 with a Location and the comment', async () => {
    const task = await newTask()
    const res = await post(task.id, team.member, { content: 'Looks good to me' })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      task_id: task.id,
      user_id: team.member.id,
      username: team.member.input.username,
      content: 'Looks good to me',
    })
    expect(res.headers.get('location')).toBe(`${commentsOf(task.id)}/${res.body.id}`)
    expect(res.body.created_at).toBe(res.body.updated_at)
    const listed = await list(task.id, team.viewer)
    expect(listed.body.data.map((c: { id: string }) => c.id)).toEqual([res.body.id])
  })

  it('ignores privileged fields in the body', async () => {
    const task = await newTask()
    const other = await newTask()
    const res = await post(task.id, team.member, {
      content: 'mine',
      id: crypto.randomUUID(),
      user_id: team.owner.id,
      task_id: other.id,
      created_at: '2000-01-01T00:00:00.000Z',
    })
    expect(res.status).toBe(201)
    expect(res.body.user_id).toBe(team.member.id)
    expect(res.body.task_id).toBe(task.id)
    expect(res.body.created_at).not.toStartWith('2000')
    expect((await list(other.id, team.owner)).body.data).toEqual([])
  })

  it('accepts 10000 characters and refuses empty, blank, missing, null and longer content', async () => {
    const task = await newTask()
    expect((await post(task.id, team.member, { content: 'x'.repeat(10_000) })).status).toBe(201)
    for (const body of [
      { content: '' },
      { content: '   \n\t ' },
      {},
      { content: null },
      { content: 42 },
      { content: 'y'.repeat(10_001) },
    ]) {
      const res = await post(task.id, team.member, body)
      expectProblemShape(res, 422)
      expect(res.body.errors[0].path).toBe('/content')
      expect(res.text).not.toContain('yyyyyyyyyy')
    }
    expect((await list(task.id, team.member)).body.pagination.total).toBe(1)
  })

  it('answers 401 to an anonymous caller', async () => {
    const task = await newTask()
    expectProblemShape(await post(task.id, undefined, { content: 'hi' }), 401)
    expect((await list(task.id, team.owner)).body.data).toEqual([])
  })

  // Pending the guard change of issue 5 (authentication before validation, in /work/main): on
  // this branch the auth macro resolves after the body is validated, so this answers 422.
  it('answers 401 to an anonymous caller even with an invalid body', async () => {
    const task = await newTask()
    expectProblemShape(await post(task.id, undefined, { content: '' }), 401)
  })

  it('answers 404 for an unknown task and 422 for a malformed id', async () => {
    expectProblemShape(await post(crypto.randomUUID(), team.member, { content: 'x' }), 404)
    expectProblemShape(await post('not-a-uuid', team.member, { content: 'x' }), 422)
  })

  it('answers 403 to a viewer and to an outsider, storing nothing', async () => {
    const task = await newTask()
    expectProblemShape(await post(task.id, team.viewer, { content: 'x' }), 403)
    expectProblemShape(await post(task.id, team.outsider, { content: 'x' }), 403)
    expect((await list(task.id, team.owner)).body.pagination.total).toBe(0)
  })

  it('lets an admin who is not a member comment', async () => {
    const task = await newTask()
    expect((await post(task.id, team.admin, { content: 'admin here' })).status).toBe(201)
  })

  it('writes a comment.created activity entry in the project', async () => {
    const task = await newTask()
    const created = await comment(task.id, team.member, 'logged')
    const rows = await server.db.sql`
      select user_id, project_id, action, entity_type
      from activity_log
      where entity_id = ${created.id}
    `
    expect([...rows]).toEqual([
      {
        user_id: team.member.id,
        project_id: team.project.id,
        action: 'comment.created',
        entity_type: 'comment',
      },
    ])
  })
})

describe('GET /tasks/:id/comments', () => {
  it('lists oldest first with page totals', async () => {
    const task = await newTask()
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await comment(task.id, team.member, `c${i}`)).id)
    const first = await list(task.id, team.member, '?limit=2')
    expect(first.status).toBe(200)
    expect(first.body.data.map((c: { id: string }) => c.id)).toEqual(ids.slice(0, 2))
    expect(first.body.pagination).toMatchObject({ page: 1, limit: 2, total: 5, pages: 3 })
    expect(typeof first.body.pagination.next_cursor).toBe('string')
    const last = await list(task.id, team.member, '?limit=2&page=3')
    expect(last.body.data.map((c: { id: string }) => c.id)).toEqual(ids.slice(4))
    expect(last.body.pagination.next_cursor).toBeNull()
  })

  it('walks by cursor, each comment once, while comments are added', async () => {
    const task = await newTask()
    const original: string[] = []
    for (let i = 0; i < 7; i++) original.push((await comment(task.id, team.member, `o${i}`)).id)
    const seen: string[] = []
    let cursor: string | null = null
    for (let round = 0; round < 20; round++) {
      const query: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3'
      const res = await list(task.id, team.member, query)
      expect(res.status).toBe(200)
      if (cursor) expect(res.body.pagination.total).toBeNull()
      seen.push(...res.body.data.map((c: { id: string }) => c.id))
      await comment(task.id, team.owner, `added during walk ${round}`)
      cursor = res.body.pagination.next_cursor
      if (!cursor) break
    }
    expect(seen.slice(0, 7)).toEqual(original)
    expect(new Set(seen).size).toBe(seen.length)
  })

  it('answers 422 for a forged cursor and a limit over 100', async () => {
    const task = await newTask()
    expectProblemShape(await list(task.id, team.member, '?cursor=bm90LWEtY3Vyc29y'), 422)
    const tooMany = await list(task.id, team.member, '?limit=101')
    expectProblemShape(tooMany, 422)
    expect(tooMany.body.errors[0].path).toBe('/limit')
  })

  it('answers 403 to an outsider and 401 to an anonymous caller', async () => {
    const task = await newTask()
    await comment(task.id, team.member, 'secret')
    const res = await list(task.id, team.outsider)
    expectProblemShape(res, 403)
    expect(res.text).not.toContain('secret')
    expectProblemShape(await server.request('GET', commentsOf(task.id)), 401)
  })
})

describe('PATCH/PUT /tasks/:id/comments/:comment_id', () => {
  const edit = (method: string, taskId: string, id: string, who: Person, body: unknown) =>
    server.request(method, `${commentsOf(taskId)}/${id}`, { token: who.access, body })

  it('lets the author edit with PATCH and PUT, bumping updated_at and logging the change', async () => {
    const task = await newTask()
    const created = await comment(task.id, team.member, 'first')
    await Bun.sleep(5)
    const patched = await edit('PATCH', task.id, created.id, team.member, { content: 'second' })
    expect(patched.status).toBe(200)
    expect(patched.body.content).toBe('second')
    expect(patched.body.updated_at > created.updated_at).toBe(true)
    const put = await edit('PUT', task.id, created.id, team.member, { content: 'third' })
    expect(put.body.content).toBe('third')
    const [entry] = await server.db.sql<{ details: Record<string, unknown> }[]>`
      select details
      from activity_log
      where entity_id = ${created.id}
        and action = 'comment.updated'
      order by created_at
      limit 1
    `
    expect(entry?.details).toMatchObject({ content: { old: 'first', new: 'second' } })
  })

  it('answers 403 to anyone but the author, admins and managers included', async () => {
    const task = await newTask()
    const created = await comment(task.id, team.member, 'mine')
    for (const who of [team.owner, team.manager, team.viewer, team.outsider, team.admin])
      expectProblemShape(await edit('PATCH', task.id, created.id, who, { content: 'theirs' }), 403)
    expect((await list(task.id, team.member)).body.data[0].content).toBe('mine')
  })

  it('answers 404 for a comment of another task and 422 for bad content', async () => {
    const task = await newTask()
    const other = await newTask()
    const created = await comment(task.id, team.member, 'here')
    expectProblemShape(
      await edit('PATCH', other.id, created.id, team.member, { content: 'x' }),
      404,
    )
    const blank = await edit('PATCH', task.id, created.id, team.member, { content: '' })
    expectProblemShape(blank, 422)
  })
})

describe('DELETE /tasks/:id/comments/:comment_id', () => {
  const remove = (taskId: string, id: string, who: Person) =>
    server.request('DELETE', `${commentsOf(taskId)}/${id}`, { token: who.access })

  it('lets the author delete their comment, logging it', async () => {
    const task = await newTask()
    const created = await comment(task.id, team.member, 'bye')
    const res = await remove(task.id, created.id, team.member)
    expect(res.status).toBe(204)
    expect(res.text).toBe('')
    expect((await list(task.id, team.member)).body.data).toEqual([])
    const rows = await server.db.sql`
      select action from activity_log where entity_id = ${created.id} order by created_at
    `
    expect(rows.map((r) => r.action)).toEqual(['comment.created', 'comment.deleted'])
    expectProblemShape(await remove(task.id, created.id, team.member), 404)
  })

  it('answers 403 to another member, a viewer and an outsider', async () => {
    const task = await newTask()
    const created = await comment(task.id, team.owner, 'keep me')
    for (const who of [team.member, team.viewer, team.outsider])
      expectProblemShape(await remove(task.id, created.id, who), 403)
    expect((await list(task.id, team.owner)).body.data).toHaveLength(1)
  })

  it('lets the project owner, a manager and an admin delete anyone’s comment', async () => {
    const task = await newTask()
    for (const who of [team.owner, team.manager, team.admin]) {
      const created = await comment(task.id, team.member, 'moderated')
      expect((await remove(task.id, created.id, who)).status).toBe(204)
    }
    expect((await list(task.id, team.owner)).body.data).toEqual([])
  })
})

describe('comment notifications', () => {
  it('tells the task’s creator and assignee, never the author', async () => {
    const task = await newTask({ assignee_id: team.manager.id })
    await comment(task.id, team.member, 'a plain comment')
    expect((await notificationsOf(team.owner.id, task.id)).map((n) => n.type)).toEqual([
      'comment_added',
    ])
    expect((await notificationsOf(team.manager.id, task.id)).map((n) => n.type)).toEqual([
      'comment_added',
    ])
    expect(await notificationsOf(team.member.id, task.id)).toEqual([])
    await comment(task.id, team.owner, 'the creator answers')
    expect(await notificationsOf(team.owner.id, task.id)).toHaveLength(1)
  })

  it('notifies a mentioned member once, and not outsiders, unknown names or the author', async () => {
    const task = await newTask()
    const v = team.viewer.input.username
    await comment(
      task.id,
      team.member,
      `@${v} and again @${v.toUpperCase()}, also @${team.outsider.input.username}, @nobody_here and me @${team.member.input.username}; mail ${v}@example.com. Thanks @${v}.`,
    )
    const viewerNotes = await notificationsOf(team.viewer.id, task.id)
    expect(viewerNotes.map((n) => n.type)).toEqual(['mentioned'])
    expect(viewerNotes[0]?.message).toContain(team.member.input.username)
    expect(await notificationsOf(team.outsider.id, task.id)).toEqual([])
    expect(await notificationsOf(team.member.id, task.id)).toEqual([])
  })

  it('gives a mentioned creator `mentioned` instead of `comment_added`', async () => {
    const task = await newTask()
    await comment(task.id, team.member, `what do you think, @${team.owner.input.username}?`)
    expect((await notificationsOf(team.owner.id, task.id)).map((n) => n.type)).toEqual([
      'mentioned',
    ])
  })

  it('notifies only members newly mentioned by an edit', async () => {
    const task = await newTask()
    const created = await comment(task.id, team.member, `hi @${team.viewer.input.username}`)
    const path = `${commentsOf(task.id)}/${created.id}`
    const content = `hi @${team.viewer.input.username} and @${team.manager.input.username}`
    await server.request('PATCH', path, { token: team.member.access, body: { content } })
    await server.request('PATCH', path, { token: team.member.access, body: { content } })
    expect(await notificationsOf(team.viewer.id, task.id)).toHaveLength(1)
    expect((await notificationsOf(team.manager.id, task.id)).map((n) => n.type)).toEqual([
      'mentioned',
    ])
  })

  it('does not notify a creator who has left the project', async () => {
    const leaver = await registerUser(server)
    const project = await createProject(server, team.owner, [
      [leaver, 'member'],
      [team.member, 'member'],
    ])
    const task = await createTask(server, project.id, leaver)
    await server.db.sql`delete from project_members where user_id = ${leaver.id}`
    await comment(task.id, team.member, 'anyone there?')
    expect(await notificationsOf(leaver.id, task.id)).toEqual([])
  })
})
