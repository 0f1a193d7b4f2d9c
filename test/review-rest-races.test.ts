import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { createProject, createTask } from './factories'
import {
  databaseUrlOf,
  expectProblemShape,
  registerUser,
  startServer,
  type TestServer,
} from './helpers'
import { createTeam, type Team } from './team'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// A task deleted between a write's permission check and its insert. On PostgreSQL the test holds
// the delete open in its own transaction: the request's check still sees the task, its insert
// waits on the row, and the delete then commits under it. (The embedded database is one session:
// a second transaction cannot hold a lock beside the app's.)
const onPostgres = Boolean(process.env.DATABASE_URL)

let server: TestServer
let team: Team
let uploadDir: string
let side: postgres.Sql
beforeAll(async () => {
  uploadDir = await mkdtemp(join(tmpdir(), 'taskapi-races-'))
  server = await startServer({ UPLOAD_DIR: uploadDir })
  team = await createTeam(server)
  if (onPostgres) side = postgres(await databaseUrlOf(server), { max: 1, onnotice: () => {} })
}, 60_000)
afterAll(async () => {
  if (onPostgres) await side.end({ timeout: 5 })
  await server.close()
  await rm(uploadDir, { recursive: true, force: true })
}, 30_000)

/**
 * Runs `write` while the test's own transaction holds what `hold` did, and commits that
 * transaction once `write` has answered or waits on a lock (the request is then past its checks).
 */
async function heldWhile<T>(
  hold: (sql: postgres.TransactionSql) => Promise<unknown>,
  write: () => Promise<T>,
): Promise<T> {
  let commit = () => {}
  const released = new Promise<void>((resolve) => {
    commit = resolve
  })
  let held = () => {}
  const holding = new Promise<void>((resolve) => {
    held = resolve
  })
  const tx = side.begin(async (sql) => {
    await hold(sql)
    held()
    await released
  })
  await holding
  let done = false
  const answer = write().finally(() => {
    done = true
  })
  for (let i = 0; i < 500 && !done; i++) {
    const [row] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'
    `
    if ((row?.n ?? 0) > 0) break
    await Bun.sleep(10)
  }
  commit()
  await tx
  return answer
}

/** Runs `write` while a transaction deletes the task; commits the delete once `write` waits on it. */
const deleteUnder = <T>(taskId: string, write: () => Promise<T>) =>
  heldWhile((sql) => sql`delete from tasks where id = ${taskId}`, write)

describe('a write racing the deletion of its task', () => {
  it.skipIf(!onPostgres)('answers 404, not 409, to a comment on it', async () => {
    const task = await createTask(server, team.project.id, team.owner)
    const res = await deleteUnder(task.id, () =>
      server.request('POST', `/api/v1/tasks/${task.id}/comments`, {
        token: team.member.access,
        body: { content: 'too late' },
      }),
    )
    expectProblemShape(res, 404)
    const rows = await server.db.sql`select 1 from task_comments where task_id = ${task.id}`
    expect(rows.length).toBe(0)
  })

  it.skipIf(!onPostgres)('answers 404, not 409, to an upload to it', async () => {
    const task = await createTask(server, team.project.id, team.owner)
    const res = await deleteUnder(task.id, async () => {
      const form = new FormData()
      form.append('file', new Blob(['bytes']), 'late.txt')
      const answer = await fetch(`${server.url}/api/v1/tasks/${task.id}/attachments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${team.member.access}` },
        body: form,
      })
      const text = await answer.text()
      return { status: answer.status, headers: answer.headers, body: JSON.parse(text), text }
    })
    expectProblemShape(res, 404)
    const files = await readdir(uploadDir, { recursive: true, withFileTypes: true })
    expect(files.filter((f) => f.isFile())).toEqual([])
  })

  it.skipIf(!onPostgres)(
    'answers 422 on /project_id to a task created as its project goes',
    async () => {
      const project = await createProject(server, team.owner, [[team.member, 'member']])
      const res = await heldWhile(
        (sql) => sql`delete from projects where id = ${project.id}`,
        () =>
          server.request('POST', '/api/v1/tasks', {
            token: team.member.access,
            body: { title: 'Into a project being deleted', project_id: project.id },
          }),
      )
      expectProblemShape(res, 422)
      expect(res.body.errors).toEqual([{ path: '/project_id', message: 'no such project' }])
    },
  )

  it('answers 404 to a comment on a task deleted before it', async () => {
    const task = await createTask(server, team.project.id, team.owner)
    await server.request('DELETE', `/api/v1/tasks/${task.id}`, { token: team.owner.access })
    const res = await server.request('POST', `/api/v1/tasks/${task.id}/comments`, {
      token: team.member.access,
      body: { content: 'after' },
    })
    expectProblemShape(res, 404)
  })
})

/**
 * Runs `write` while a transaction removes `userId` from the project as the members service does
 * (the row goes, then their assignments are cleared), and commits that removal once `write` has
 * answered or waits on it.
 */
const removeMemberUnder = <T>(projectId: string, userId: string, write: () => Promise<T>) =>
  heldWhile(async (sql) => {
    await sql`select id from projects where id = ${projectId} for no key update`
    await sql`delete from project_members where project_id = ${projectId} and user_id = ${userId}`
    await sql`
      update tasks set assignee_id = null, version = version + 1
      where project_id = ${projectId} and assignee_id = ${userId}
    `
  }, write)

describe('an assignment racing the assignee’s removal from the project', () => {
  const assigneesOutside = async (projectId: string) => {
    const rows = await server.db.sql<{ id: string }[]>`
      select t.id from tasks t
      where t.project_id = ${projectId} and t.assignee_id is not null
        and not exists (
          select 1 from project_members pm
          where pm.project_id = t.project_id and pm.user_id = t.assignee_id
        )
    `
    return rows.length
  }

  it.skipIf(!onPostgres)(
    'never leaves a task assigned to a non-member (PATCH, assign)',
    async () => {
      for (const path of ['', '/assign']) {
        const leaving = await registerUser(server)
        const project = await createProject(server, team.owner, [[leaving, 'member']])
        const task = await createTask(server, project.id, team.owner)
        const res = await removeMemberUnder(project.id, leaving.id, () =>
          server.request(path ? 'PUT' : 'PATCH', `/api/v1/tasks/${task.id}${path}`, {
            token: team.owner.access,
            body: { assignee_id: leaving.id },
          }),
        )
        expectProblemShape(res, 422)
        expect(await assigneesOutside(project.id)).toBe(0)
      }
    },
  )

  it.skipIf(!onPostgres)('never creates a task assigned to a non-member', async () => {
    const leaving = await registerUser(server)
    const project = await createProject(server, team.owner, [[leaving, 'member']])
    const res = await removeMemberUnder(project.id, leaving.id, () =>
      server.request('POST', '/api/v1/tasks', {
        token: team.owner.access,
        body: { title: 'Assigned as they leave', project_id: project.id, assignee_id: leaving.id },
      }),
    )
    expectProblemShape(res, 422)
    expect(await assigneesOutside(project.id)).toBe(0)
  })
})
