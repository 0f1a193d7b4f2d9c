import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { insertNotifications } from '../src/modules/notifications/queries'
import { createTask } from './factories'
import { startServer, type TestServer } from './helpers'
import { createTeam, type Person, type Team } from './team'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// Who may call each comment, attachment and notification route: one row per route, one column
// per caller. A route under these prefixes that is missing here fails the last test.

let server: TestServer
let team: Team
let uploadDir: string
beforeAll(async () => {
  uploadDir = await mkdtemp(join(tmpdir(), 'taskapi-matrix-'))
  server = await startServer({ UPLOAD_DIR: uploadDir })
  team = await createTeam(server)
}, 60_000)
afterAll(async () => {
  await server.close()
  await rm(uploadDir, { recursive: true, force: true })
}, 60_000)

type Caller = 'owner' | 'manager' | 'member' | 'viewer' | 'outsider' | 'admin' | 'anonymous'
type Fixture = { taskId: string; commentId: string; attachmentId: string }

/** A fresh task with a comment and an attachment by the member, so each call has its own. */
async function fixture(): Promise<Fixture> {
  const task = await createTask(server, team.project.id, team.owner)
  const comment = await server.request('POST', `/api/v1/tasks/${task.id}/comments`, {
    token: team.member.access,
    body: { content: 'by the member' },
  })
  const attachment = await upload(task.id, team.member)
  return { taskId: task.id, commentId: comment.body.id, attachmentId: attachment.id }
}

async function upload(taskId: string, who: Person | undefined) {
  const form = new FormData()
  form.append('file', new Blob(['bytes']), 'f.txt')
  const res = await fetch(`${server.url}/api/v1/tasks/${taskId}/attachments`, {
    method: 'POST',
    headers: who ? { authorization: `Bearer ${who.access}` } : {},
    body: form,
  })
  return { status: res.status, id: ((await res.json()) as { id: string }).id }
}

const ALL_MEMBERS = { owner: 200, manager: 200, member: 200, viewer: 200, admin: 200 }
const WRITERS = { owner: 201, manager: 201, member: 201, viewer: 403, admin: 201 }
const MODERATORS_AND_AUTHOR = { owner: 204, manager: 204, member: 204, viewer: 403, admin: 204 }
const AUTHOR_ONLY = { owner: 403, manager: 403, member: 200, viewer: 403, admin: 403 }

type Row = {
  method: string
  route: string
  expect: Omit<Record<Caller, number>, 'outsider' | 'anonymous'>
  call: (f: Fixture, who: Person | undefined) => Promise<number>
}

const request = (method: string, path: string, who: Person | undefined, body?: unknown) =>
  server.request(method, path, { token: who?.access, body }).then((r) => r.status)

const ROWS: Row[] = [
  {
    method: 'GET',
    route: '/api/v1/tasks/:id/comments',
    expect: ALL_MEMBERS,
    call: (f, who) => request('GET', `/api/v1/tasks/${f.taskId}/comments`, who),
  },
  {
    method: 'POST',
    route: '/api/v1/tasks/:id/comments',
    expect: WRITERS,
    call: (f, who) =>
      request('POST', `/api/v1/tasks/${f.taskId}/comments`, who, { content: 'hello' }),
  },
  ...['PATCH', 'PUT'].map((method) => ({
    method,
    route: '/api/v1/tasks/:id/comments/:comment_id',
    expect: AUTHOR_ONLY,
    call: (f: Fixture, who: Person | undefined) =>
      request(method, `/api/v1/tasks/${f.taskId}/comments/${f.commentId}`, who, {
        content: 'edited',
      }),
  })),
  {
    method: 'DELETE',
    route: '/api/v1/tasks/:id/comments/:comment_id',
    expect: MODERATORS_AND_AUTHOR,
    call: (f, who) => request('DELETE', `/api/v1/tasks/${f.taskId}/comments/${f.commentId}`, who),
  },
  {
    method: 'GET',
    route: '/api/v1/tasks/:id/attachments',
    expect: ALL_MEMBERS,
    call: (f, who) => request('GET', `/api/v1/tasks/${f.taskId}/attachments`, who),
  },
  {
    method: 'POST',
    route: '/api/v1/tasks/:id/attachments',
    expect: WRITERS,
    call: (f, who) => upload(f.taskId, who).then((r) => r.status),
  },
  {
    method: 'GET',
    route: '/api/v1/tasks/:id/attachments/:attachment_id',
    expect: ALL_MEMBERS,
    call: (f, who) =>
      fetch(`${server.url}/api/v1/tasks/${f.taskId}/attachments/${f.attachmentId}`, {
        headers: who ? { authorization: `Bearer ${who.access}` } : {},
      }).then(async (r) => {
        await r.arrayBuffer()
        return r.status
      }),
  },
  {
    method: 'DELETE',
    route: '/api/v1/tasks/:id/attachments/:attachment_id',
    expect: MODERATORS_AND_AUTHOR,
    call: (f, who) =>
      request('DELETE', `/api/v1/tasks/${f.taskId}/attachments/${f.attachmentId}`, who),
  },
]

const callers: Caller[] = ['owner', 'manager', 'member', 'viewer', 'outsider', 'admin', 'anonymous']

describe('task comment and attachment routes', () => {
  for (const row of ROWS)
    it(`${row.method} ${row.route}: members by role, outsider 403, anonymous 401`, async () => {
      const got: Record<string, number> = {}
      const want: Record<string, number> = { ...row.expect, outsider: 403, anonymous: 401 }
      for (const caller of callers) {
        const who = caller === 'anonymous' ? undefined : team[caller]
        got[caller] = await row.call(await fixture(), who)
      }
      expect(got).toEqual(want)
    }, 30_000)
})

describe('notification routes', () => {
  const NOTIFICATION_ROUTES: [string, string, (id: string) => string, number][] = [
    ['GET', '/api/v1/notifications', () => '/api/v1/notifications', 200],
    ['GET', '/api/v1/notifications/unread-count', () => '/api/v1/notifications/unread-count', 200],
    ['PUT', '/api/v1/notifications/read-all', () => '/api/v1/notifications/read-all', 204],
    ['PUT', '/api/v1/notifications/:id/read', (id) => `/api/v1/notifications/${id}/read`, 200],
    ['DELETE', '/api/v1/notifications/:id', (id) => `/api/v1/notifications/${id}`, 204],
  ]
  for (const [method, route, path, ok] of NOTIFICATION_ROUTES)
    it(`${method} ${route}: the recipient ${ok}, another user never sees it, anonymous 401`, async () => {
      const [note] = await insertNotifications(server.db.sql, [
        {
          user_id: team.member.id,
          type: 'mentioned',
          title: 'Mentioned',
          message: 'secret message',
          entity_type: 'task',
          entity_id: crypto.randomUUID(),
        },
      ])
      const id = note?.id as string
      const other = await server.request(method, path(id), { token: team.viewer.access })
      expect(other.text).not.toContain('secret message')
      if (route.includes(':id')) expect(other.status).toBe(404)
      expect(await request(method, path(id), undefined)).toBe(401)
      expect(await request(method, path(id), team.member)).toBe(ok)
    })
})

it('covers every comment, attachment and notification route of the app', () => {
  const covered = new Set([
    ...ROWS.map((r) => `${r.method} ${r.route}`),
    'GET /api/v1/notifications',
    'GET /api/v1/notifications/unread-count',
    'PUT /api/v1/notifications/read-all',
    'PUT /api/v1/notifications/:id/read',
    'DELETE /api/v1/notifications/:id',
  ])
  const routes = server.app.routes
    .filter((r) => /^\/api\/v1\/(tasks\/:id\/(comments|attachments)|notifications)/.test(r.path))
    .map((r) => `${r.method} ${r.path}`)
  expect(routes.length).toBeGreaterThanOrEqual(covered.size)
  expect(routes.filter((r) => !covered.has(r))).toEqual([])
})
