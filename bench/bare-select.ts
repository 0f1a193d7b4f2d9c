/**
 * The floor for GET /tasks/:id in bench/tasks.ts: a bare Bun.serve answering `/<task id>` with a
 * primary-key select through postgres.js (same driver, same pool size), nothing else.
 */
import postgres from 'postgres'

const sql = postgres(process.env.DATABASE_URL as string, { max: 10, onnotice: () => {} })
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  async fetch(request) {
    const id = new URL(request.url).pathname.slice(1)
    const [row] = await sql`
      select id, title, description, project_id, assignee_id, created_by, status, priority,
        due_date, completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at
      from tasks
      where id = ${id}
    `
    return row ? Response.json(row) : new Response('not found', { status: 404 })
  },
})
console.log(`bare listening on ${server.port}`)
process.on('SIGTERM', async () => {
  server.stop(true)
  await sql.end({ timeout: 5 })
  process.exit(0)
})
