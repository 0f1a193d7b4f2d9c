/**
 * The floor for the writes in bench/run.ts: a bare Bun.serve answering any POST with a single-row
 * insert into tasks through postgres.js (same driver, same pool size as the server), returning
 * the row as JSON with 201. The body is the one bench/run.ts posts to POST /api/v1/tasks plus
 * `created_by`; nothing is checked: no validation, no permission, no event, no activity row.
 * bench/hotpath.ts posts only `title` and `project_id`: the creator is then USER_ID, and the rest
 * the columns' defaults.
 */
import postgres from 'postgres'

type Body = {
  title: string
  description?: string
  project_id: string
  created_by?: string
  priority?: string
  tags?: string[]
}

const sql = postgres(process.env.DATABASE_URL as string, { max: 10, onnotice: () => {} })
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  async fetch(request) {
    const body = (await request.json()) as Body
    const [row] = await sql`
      insert into tasks (title, description, project_id, created_by, priority, tags)
      values (${body.title}, ${body.description ?? null}, ${body.project_id},
        ${body.created_by ?? (process.env.USER_ID as string)}, ${body.priority ?? 'medium'},
        ${body.tags ?? []})
      returning id, title, description, project_id, assignee_id, created_by, status, priority,
        due_date, completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at
    `
    return Response.json(row, { status: 201 })
  },
})
console.log(`bare listening on ${server.port}`)
process.on('SIGTERM', async () => {
  server.stop(true)
  await sql.end({ timeout: 5 })
  process.exit(0)
})
