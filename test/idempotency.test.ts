import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createTask } from './factories'
import {
  expectProblemShape,
  registerUser,
  startServer,
  type TestResponse,
  type TestServer,
} from './helpers'
import { createTeam, type Team } from './team'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let team: Team
beforeAll(async () => {
  server = await startServer()
  team = await createTeam(server)
}, 60_000)
afterAll(() => server.close(), 30_000)

const newKey = () => `key-${crypto.randomUUID()}`

function post(path: string, token: string, body: unknown, key?: string) {
  return server.request('POST', path, {
    token,
    body,
    headers: key === undefined ? {} : { 'idempotency-key': key },
  })
}

const count = async (table: 'projects' | 'tasks', name: string) => {
  const column = table === 'projects' ? 'name' : 'title'
  const [row] = await server.db.sql<{ n: number }[]>`
    select count(*)::int as n from ${server.db.sql(table)} where ${server.db.sql(column)} = ${name}
  `
  return row?.n
}

describe('Idempotency-Key', () => {
  it('runs the same POST once and answers the retry identically, marked as replayed', async () => {
    const key = newKey()
    const name = `Idem ${crypto.randomUUID()}`
    const first = await post('/api/v1/projects', team.owner.access, { name }, key)
    const second = await post('/api/v1/projects', team.owner.access, { name }, key)
    expect(first.status).toBe(201)
    expect(first.headers.get('idempotency-replayed')).toBeNull()
    expect(second.status).toBe(201)
    expect(second.headers.get('idempotency-replayed')).toBe('true')
    expect(second.text).toBe(first.text)
    expect(second.headers.get('location')).toBe(first.headers.get('location'))
    expect(second.headers.get('content-type')).toStartWith('application/json')
    expect(second.headers.get('x-request-id')).toBeTruthy()
    expect(await count('projects', name)).toBe(1)
  })

  it('lets one of ten concurrent POSTs with one key run; the rest get 409 or the replay', async () => {
    const key = newKey()
    const title = `Race ${crypto.randomUUID()}`
    const body = { title, project_id: team.project.id }
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => post('/api/v1/tasks', team.member.access, body, key)),
    )
    const original = answers.filter(
      (r) => r.status === 201 && r.headers.get('idempotency-replayed') === null,
    )
    expect(original).toHaveLength(1)
    for (const answer of answers) {
      if (answer === original[0]) continue
      if (answer.status === 409) expectProblemShape(answer, 409)
      else {
        expect(answer.status).toBe(201)
        expect(answer.headers.get('idempotency-replayed')).toBe('true')
        expect(answer.text).toBe((original[0] as TestResponse).text)
      }
    }
    expect(await count('tasks', title)).toBe(1)
  }, 30_000)

  it('answers 422 to the same key with another request, and changes nothing', async () => {
    const key = newKey()
    const name = `First ${crypto.randomUUID()}`
    expect((await post('/api/v1/projects', team.owner.access, { name }, key)).status).toBe(201)
    const other = `Other ${crypto.randomUUID()}`
    expectProblemShape(await post('/api/v1/projects', team.owner.access, { name: other }, key), 422)
    expect(await count('projects', other)).toBe(0)
    // Another path with the same key and body is another request too.
    const task = await createTask(server, team.project.id, team.owner)
    expectProblemShape(
      await post(`/api/v1/tasks/${task.id}/comments`, team.owner.access, { name }, key),
      422,
    )
  })

  it('keeps keys per caller', async () => {
    const key = newKey()
    const name = `Mine ${crypto.randomUUID()}`
    const a = await post('/api/v1/projects', team.owner.access, { name }, key)
    const b = await post('/api/v1/projects', team.manager.access, { name }, key)
    expect(a.status).toBe(201)
    expect(b.status).toBe(201)
    expect(b.headers.get('idempotency-replayed')).toBeNull()
    expect(b.body.id).not.toBe(a.body.id)
  })

  it('keeps no answer that is not a 2xx: a 5xx, or a 4xx fixed and sent again', async () => {
    const key = newKey()
    const name = `Broken ${crypto.randomUUID()}`
    await server.db.sql`alter table activity_log rename to activity_log_away`
    let failed: TestResponse
    try {
      failed = await post('/api/v1/projects', team.owner.access, { name }, key)
    } finally {
      await server.db.sql`alter table activity_log_away rename to activity_log`
    }
    expectProblemShape(failed, 500)
    const retried = await post('/api/v1/projects', team.owner.access, { name }, key)
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotency-replayed')).toBeNull()
    expect(await count('projects', name)).toBe(1)

    const memberKey = newKey()
    const path = `/api/v1/projects/${team.project.id}/members`
    const missing = await post(
      path,
      team.owner.access,
      { user_id: crypto.randomUUID(), role: 'viewer' },
      memberKey,
    )
    expect([404, 422]).toContain(missing.status)
    const newcomer = await registerUser(server)
    const added = await post(
      path,
      team.owner.access,
      { user_id: newcomer.id, role: 'viewer' },
      memberKey,
    )
    expect(added.status).toBe(201)
    expect(added.headers.get('idempotency-replayed')).toBeNull()
  })

  it('answers a key that expired as a new request', async () => {
    const key = newKey()
    const name = `Old ${crypto.randomUUID()}`
    expect((await post('/api/v1/projects', team.owner.access, { name }, key)).status).toBe(201)
    await server.db.sql`
      update idempotency_keys set expires_at = now() - interval '1 second' where key = ${key}
    `
    const again = await post('/api/v1/projects', team.owner.access, { name }, key)
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotency-replayed')).toBeNull()
    expect(await count('projects', name)).toBe(2)
  })

  it('refuses a malformed key, and any key on routes whose answer holds a secret, with 400', async () => {
    const tooLong = 'k'.repeat(256)
    expectProblemShape(
      await post('/api/v1/projects', team.owner.access, { name: 'never' }, tooLong),
      400,
    )
    expectProblemShape(
      await post('/api/v1/projects', team.owner.access, { name: 'never' }, 'tab\there'),
      400,
    )
    expect(await count('projects', 'never')).toBe(0)
    expectProblemShape(
      await post(
        '/api/v1/tokens',
        team.owner.access,
        { name: 't', scopes: ['tasks:read'] },
        newKey(),
      ),
      400,
    )
    expectProblemShape(
      await post(
        '/api/v1/auth/login',
        '',
        { email: team.owner.input.email, password: team.owner.input.password },
        newKey(),
      ),
      400,
    )
    const [row] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from api_tokens where name = 't'
    `
    expect(row?.n).toBe(0)
  })

  it('replays an upload of the same file, and answers 422 to another file with the same key', async () => {
    const task = await createTask(server, team.project.id, team.member)
    const key = newKey()
    const upload = (text: string, name = 'notes.txt') => {
      const form = new FormData()
      form.append('file', new Blob([text], { type: 'text/plain' }), name)
      return fetch(`${server.url}/api/v1/tasks/${task.id}/attachments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${team.member.access}`, 'idempotency-key': key },
        body: form,
      })
    }
    const first = await upload('hello')
    expect(first.status).toBe(201)
    const firstText = await first.text()
    const again = await upload('hello')
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotency-replayed')).toBe('true')
    expect(again.headers.get('location')).toBe(first.headers.get('location'))
    expect(await again.text()).toBe(firstText)
    // The route reads the body itself and binds the key to the file's digest: another file, or
    // the same bytes under another name, is another request.
    for (const other of [await upload('other'), await upload('hello', 'renamed.txt')]) {
      expect(other.status).toBe(422)
      expect(((await other.json()) as { title: string }).title).toBe('Idempotency-Key reused')
    }
    const [row] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from task_attachments where task_id = ${task.id}
    `
    expect(row?.n).toBe(1)
  })

  it('stores the answer in the transaction of the change (one commit for both)', async () => {
    const task = await createTask(server, team.project.id, team.owner)
    const newcomer = await registerUser(server)
    const form = new FormData()
    form.append('file', new Blob(['bytes'], { type: 'text/plain' }), 'a.txt')
    const cases: [string, unknown, string][] = [
      ['/api/v1/projects', { name: `Tx ${crypto.randomUUID()}` }, 'projects'],
      [
        '/api/v1/tasks',
        { title: `Tx ${crypto.randomUUID()}`, project_id: team.project.id },
        'tasks',
      ],
      [`/api/v1/tasks/${task.id}/comments`, { content: 'in one transaction' }, 'task_comments'],
      [
        `/api/v1/projects/${team.project.id}/members`,
        { user_id: newcomer.id, role: 'viewer' },
        'project_members',
      ],
      [`/api/v1/tasks/${task.id}/attachments`, form, 'task_attachments'],
    ]
    for (const [path, body, table] of cases) {
      const key = newKey()
      const res =
        body instanceof FormData
          ? await fetch(server.url + path, {
              method: 'POST',
              headers: { authorization: `Bearer ${team.owner.access}`, 'idempotency-key': key },
              body,
            })
          : await fetch(server.url + path, {
              method: 'POST',
              headers: {
                authorization: `Bearer ${team.owner.access}`,
                'idempotency-key': key,
                'content-type': 'application/json',
              },
              body: JSON.stringify(body),
            })
      expect(`${path}: ${res.status}`).toBe(`${path}: 201`)
      const created = (await res.json()) as { id?: string; user_id?: string }
      const sql = server.db.sql
      // xmin: the transaction that wrote the row. The change and its stored answer share it.
      const [changed] =
        table === 'project_members'
          ? await sql<{ xmin: string }[]>`
              select xmin::text as xmin from project_members
              where project_id = ${team.project.id} and user_id = ${created.user_id as string}
            `
          : await sql<{ xmin: string }[]>`
              select xmin::text as xmin from ${sql(table)} where id = ${created.id as string}
            `
      const [stored] = await sql<{ xmin: string; status: number }[]>`
        select xmin::text as xmin, status from idempotency_keys where key = ${key}
      `
      expect(stored?.status).toBe(201)
      expect(`${path}: ${stored?.xmin}`).toBe(`${path}: ${changed?.xmin}`)
    }
  })

  it('rolls the change back when its answer cannot be stored, and gives the key back', async () => {
    const sql = server.db.sql
    // Storing any answer fails, inside the transaction that stores it.
    await sql.unsafe(`
      create function refuse_answer() returns trigger language plpgsql as $$
      begin raise exception 'answer not stored'; end $$;
      create trigger refuse_answer before update on idempotency_keys
        for each row when (new.status is not null) execute function refuse_answer();
    `)
    const key = newKey()
    const title = `Crash ${crypto.randomUUID()}`
    const body = { title, project_id: team.project.id }
    let failed: TestResponse
    try {
      failed = await post('/api/v1/tasks', team.member.access, body, key)
    } finally {
      await sql.unsafe(`
        drop trigger refuse_answer on idempotency_keys;
        drop function refuse_answer();
      `)
    }
    expectProblemShape(failed, 500)
    // No change without its stored answer: the task is not there, and the key is free again
    // (given back after the answer is sent, hence the wait).
    expect(await count('tasks', title)).toBe(0)
    const keyRows = async () => {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from idempotency_keys where key = ${key}
      `
      return row?.n
    }
    const deadline = Date.now() + 5_000
    while ((await keyRows()) !== 0 && Date.now() < deadline) await Bun.sleep(10)
    expect(await keyRows()).toBe(0)
    const retried = await post('/api/v1/tasks', team.member.access, body, key)
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotency-replayed')).toBeNull()
    expect(await count('tasks', title)).toBe(1)
  })

  it('lets a retry take over a claim abandoned mid-request, but not one still running', async () => {
    const sql = server.db.sql
    const title = `Abandoned ${crypto.randomUUID()}`
    const body = { title, project_id: team.project.id }
    // A claim as another request of this body would hold it, `age` old and without an answer.
    const claim = (key: string, age: string, fingerprint: string) => sql`
      insert into idempotency_keys (user_id, key, fingerprint, claim, created_at, expires_at)
      values (${team.member.id}, ${key}, ${fingerprint}, gen_random_uuid(),
        now() - ${age}::interval, now() + interval '1 day')
    `
    // A claim of a minute ago (a process that died before answering) is taken over ...
    const abandoned = newKey()
    await claim(abandoned, '2 minutes', '0'.repeat(64))
    const retried = await post('/api/v1/tasks', team.member.access, body, abandoned)
    expect(retried.status).toBe(201)
    expect(await count('tasks', title)).toBe(1)
    expect(
      (await post('/api/v1/tasks', team.member.access, body, abandoned)).headers.get(
        'idempotency-replayed',
      ),
    ).toBe('true')
    // ... one of a second ago is still running: 409, nothing created.
    const running = newKey()
    const [first] = await sql<{ fingerprint: string }[]>`
      select fingerprint from idempotency_keys where key = ${abandoned}
    `
    await claim(running, '1 second', first?.fingerprint ?? '')
    expectProblemShape(await post('/api/v1/tasks', team.member.access, body, running), 409)
    expect(await count('tasks', title)).toBe(1)
  })

  it('rolls back a request whose claim was taken over before it committed', async () => {
    const sql = server.db.sql
    const key = newKey()
    const title = `Overtaken ${crypto.randomUUID()}`
    // While the request's transaction runs, a retry takes its key over (the trigger plays the
    // retry: it gives the row another claim id, as claimKey does after the stale bound).
    await sql.unsafe(`
      create function take_over() returns trigger language plpgsql as $$
      begin
        update idempotency_keys set claim = gen_random_uuid() where key = '${key}';
        return new;
      end $$;
      create trigger take_over before insert on tasks
        for each row when (new.title = '${title}') execute function take_over();
    `)
    let answer: TestResponse
    try {
      answer = await post(
        '/api/v1/tasks',
        team.member.access,
        { title, project_id: team.project.id },
        key,
      )
    } finally {
      await sql.unsafe('drop trigger take_over on tasks; drop function take_over();')
    }
    expectProblemShape(answer, 409)
    expect(await count('tasks', title)).toBe(0)
  })

  it('leaves requests without a key alone', async () => {
    const name = `Plain ${crypto.randomUUID()}`
    const a = await post('/api/v1/projects', team.owner.access, { name })
    const b = await post('/api/v1/projects', team.owner.access, { name })
    expect([a.status, b.status]).toEqual([201, 201])
    expect(await count('projects', name)).toBe(2)
  })
})
