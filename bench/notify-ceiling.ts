/**
 * The database's side of a write, without the server: pgbench (C, prepared statements) runs the
 * statements of `POST /tasks` as the server sends them, against a bare single-row insert, in one
 * run. It shows what bounds writes in PostgreSQL itself:
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/notify-ceiling.ts \
 *     [--seconds=8] [--clients=16] [--projects=20]
 *
 * Variants (each a pgbench script; a task goes to one of PROJECTS projects at random):
 * - `bare insert`: the single-row insert of bench/bare-insert.ts.
 * - `POST /tasks, NOTIFY in the transaction`: begin; the checked insert with its activity entry;
 *   the event statement (project lock, event, webhook outbox, NOTIFY); commit. The statements of
 *   src/modules/tasks/queries.ts and src/realtime/queries.ts, written out (the embedded database
 *   still announces this way).
 * - `... NOTIFY after commit (as sent)`: the same, the NOTIFY sent as its own statement after the
 *   commit, as the server does on PostgreSQL (it also releases the project's lock then).
 * - `... no NOTIFY`: the same without any NOTIFY (what the rest of the write costs).
 * - `... without its activity entry`: as sent, less the activity_log insert (what a write would
 *   cost if the activity feed were read from the events instead).
 * - `... as one statement`: as sent, but the checked insert, its activity entry and the event
 *   in one autocommitted statement (the event's data built in SQL; a session lock held until the
 *   NOTIFY and unlock that follow): what sending fewer statements would save the database.
 * - `checked insert only` and `... with its activity entry`: one autocommitted statement each,
 *   no event (what the activity entry costs on its own).
 * `--rounds=N` (default 2) runs every variant N times, interleaved; each is reported by its best.
 * PostgreSQL (15 here) takes one cluster-wide lock for every transaction that has queued a
 * NOTIFY and holds it until its commit record is flushed: such commits cannot share a WAL flush
 * (group commit), so they queue one behind the other. Needs `pgbench` (postgresql-client).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/db'
import { arg, benchDatabase } from './lib'

const SECONDS = arg('seconds', 8)
const CLIENTS = arg('clients', 16)
const PROJECTS = arg('projects', 20)
const ROUNDS = arg('rounds', 2)

const benchDb = await benchDatabase('taskapi_notify_ceiling', 'bench/notify-ceiling.ts')
const sql = postgres(benchDb.url, { max: 1, onnotice: () => {} })
const work = mkdtempSync(join(tmpdir(), 'notify-ceiling-'))
try {
  await migrate(sql)
  const [user] = await sql<{ id: string }[]>`
    insert into users (email, username, password_hash)
    values ('bench@example.com', 'bench', 'x')
    returning id
  `
  if (!user) throw new Error('no user')
  const projects: string[] = []
  for (let i = 0; i < PROJECTS; i++) {
    const [project] = await sql<{ id: string }[]>`
      insert into projects (name, owner_id) values (${`Project ${i}`}, ${user.id}) returning id
    `
    if (!project) throw new Error('no project')
    await sql`insert into project_members (project_id, user_id, role) values (${project.id}, ${user.id}, 'owner')`
    projects.push(project.id)
  }
  // pgbench picks the project: `\set p random(1, N)` then a lookup in a small table.
  await sql`create table bench_projects (n int primary key, id uuid not null)`
  for (const [i, id] of projects.entries())
    await sql`insert into bench_projects (n, id) values (${i + 1}, ${id})`

  const pick = `\\set n random(1, ${PROJECTS})\n`
  const project = `(select id from bench_projects where n = :n)`
  const userId = `'${user.id}'::uuid`
  const bare = `${pick}insert into tasks (title, project_id, created_by) values ('bench task', ${project}, ${userId}) returning id, title, description, project_id, assignee_id, created_by, status, priority, due_date, completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at;\n`
  const checkedInsert = `with access as (select true as found, pm.role from projects p left join project_members pm on pm.project_id = p.id and pm.user_id = ${userId} where p.id = ${project}), assignee as (select true as ok), t as (insert into tasks (title, description, project_id, assignee_id, created_by, status, priority, due_date, estimated_hours, tags, completed_at) select 'bench task', null, ${project}, null, ${userId}, 'todo', 'medium', null, null, '{}'::text[], null from access, assignee where assignee.ok and access.role = any('{owner,manager,member}'::text[]) returning id, title, description, project_id, assignee_id, created_by, status, priority, due_date, completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at), activity as (insert into activity_log (user_id, project_id, action, entity_type, entity_id, details) select t.created_by, t.project_id, 'task.created', 'task', t.id, jsonb_build_object('title', t.title) from t) select coalesce(access.found, false) as project_exists, access.role, assignee.ok, created.* from assignee left join access on true left join (select t.id, t.title, p.name as project_name, a.username as assignee_name, c.username as created_by_name, t.created_at from t join projects p on p.id = t.project_id left join users a on a.id = t.assignee_id join users c on c.id = t.created_by) created on true;\n`
  const data = `'{"task":{"title":"bench task","status":"todo","priority":"medium","tags":[]},"actor_id":"${user.id}"}'`
  const event = (notify: boolean) =>
    `with input as (select ${project} as project_id, 'task.created'::text as event, ${data}::text as data), lock as (select pg_advisory_xact_lock(1952543849, hashtext(input.project_id::text)) from input), e as (insert into events (project_id, event, data) select input.project_id, input.event, input.data::jsonb from input, lock returning id, at), delivery as (insert into webhook_deliveries (webhook_id, event_id, message_id, event, payload) select w.id, e.id, e.id::text, input.event, input.data from input, e, webhooks w where w.project_id = input.project_id and w.active and (input.event = any(w.events) or '*' = any(w.events)))${notify ? `, announced as (select pg_notify('taskapi_bench', '{"k":"e","id":' || e.id || '}') from e) select e.id, e.at from e, announced;` : ' select e.id, e.at from e;'}\n`
  const activity =
    ", activity as (insert into activity_log (user_id, project_id, action, entity_type, entity_id, details) select t.created_by, t.project_id, 'task.created', 'task', t.id, jsonb_build_object('title', t.title) from t)"
  if (!checkedInsert.includes(activity))
    throw new Error('the activity insert is not where expected')
  const checkedWithoutActivity = checkedInsert.replace(activity, '')
  const notifyAfter = "select pg_notify('taskapi_bench', 'x');\n"
  const unlock = `select pg_notify('taskapi_bench', 'x'), pg_advisory_unlock(1952543849, hashtext(${project}::text));\n`
  // pgbench reads `:name` as a variable: the timestamp format spells its colons as chr(58).
  const oneStatement = checkedInsert.replace(
    ') select coalesce(access.found',
    `), created as (select t.id, t.title, p.name as project_name, t.project_id, t.created_at from t join projects p on p.id = t.project_id), lock as (select pg_advisory_lock(1952543849, hashtext(created.project_id::text)) from created), e as (insert into events (project_id, event, data) select created.project_id, 'task.created', json_build_object('task', json_build_object('id', created.id, 'title', created.title, 'project_name', created.project_name, 'created_at', to_char(created.created_at, 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS"Z"')), 'actor_id', ${userId})::jsonb from created, lock returning id, project_id), delivery as (insert into webhook_deliveries (webhook_id, event_id, message_id, event, payload) select w.id, e.id, e.id::text, 'task.created', '{}' from e, webhooks w where w.project_id = e.project_id and w.active) select coalesce(access.found`,
  )
  const scripts: [string, string][] = [
    ['bare insert', bare],
    [
      'POST /tasks, NOTIFY in the transaction',
      `${pick}begin;\n${checkedInsert}${event(true)}commit;\n`,
    ],
    [
      'POST /tasks, NOTIFY after commit (as sent)',
      `${pick}begin;\n${checkedInsert}${event(false)}commit;\n${notifyAfter}`,
    ],
    ['POST /tasks, no NOTIFY', `${pick}begin;\n${checkedInsert}${event(false)}commit;\n`],
    [
      'POST /tasks, as sent, without its activity entry',
      `${pick}begin;\n${checkedWithoutActivity}${event(false)}commit;\n${notifyAfter}`,
    ],
    ['POST /tasks, as one statement', `${pick}${oneStatement}${unlock}`],
    ['checked insert only', `${pick}${checkedWithoutActivity}`],
    ['checked insert with its activity entry', `${pick}${checkedInsert}`],
  ]
  const url = new URL(benchDb.url)
  const results: { name: string; tps: number }[] = []
  // ROUNDS times each, interleaved, so that a noisy neighbour hits every variant.
  for (let round = 0; round < ROUNDS; round++)
    for (const [index, [name, script]] of scripts.entries()) {
      const file = join(work, `${index}.sql`)
      writeFileSync(file, script)
      const proc = Bun.spawn(
        [
          'pgbench',
          '-n',
          '-M',
          'prepared',
          `-c${CLIENTS}`,
          '-j2',
          `-T${SECONDS}`,
          '-f',
          file,
          '-h',
          url.hostname,
          '-p',
          url.port || '5432',
          '-U',
          decodeURIComponent(url.username || 'postgres'),
          url.pathname.slice(1),
        ],
        { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, PGPASSWORD: url.password } },
      )
      const out = await new Response(proc.stdout).text()
      const err = await new Response(proc.stderr).text()
      if ((await proc.exited) !== 0) throw new Error(`pgbench failed: ${err}`)
      const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
      console.log(`round ${round + 1}: ${name}: ${tps.toFixed(0)} tps`)
      results.push({ name, tps })
    }
  const best = (name: string) =>
    Math.max(...results.filter((r) => r.name === name).map((r) => r.tps))
  const baseline = best('bare insert')
  console.log(
    `\npgbench -M prepared -c${CLIENTS} -j2 -T${SECONDS}, ${PROJECTS} projects (best of ${ROUNDS} rounds)`,
  )
  for (const [name] of scripts)
    console.log(
      `${name.padEnd(50)} ${best(name).toFixed(0).padStart(7)} tps  ${(best(name) / baseline).toFixed(2)}×`,
    )
} finally {
  await sql.end({ timeout: 5 })
  await benchDb.drop()
  rmSync(work, { recursive: true, force: true })
}
