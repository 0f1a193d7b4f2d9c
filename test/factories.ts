import type { TestServer } from './helpers'

type ProjectRole = 'owner' | 'manager' | 'member' | 'viewer'
/** A user; with `access` (as registerUser returns) the project is made through the API. */
type Someone = { id: string; access?: string }

/**
 * A project owned by `owner`, with `members` added in the given roles, made through
 * POST /projects and POST /projects/:id/members (so the activity and notification rows are the
 * real ones: each added member has a `project_member_added` notification). An owner without an
 * `access` token gets the same rows written through SQL.
 */
export async function createProject(
  server: TestServer,
  owner: Someone,
  members: [Someone, ProjectRole][] = [],
  fields: { name?: string } = {},
) {
  const name = fields.name ?? `Project ${crypto.randomUUID().slice(0, 8)}`
  if (!owner.access) return createProjectInSql(server, owner, members, name)
  const res = await server.request('POST', '/api/v1/projects', {
    token: owner.access,
    body: { name },
  })
  if (res.status !== 201) throw new Error(`create project failed: ${res.status} ${res.text}`)
  const project = { id: res.body.id as string, name: res.body.name as string }
  for (const [user, role] of members) {
    const added = await server.request('POST', `/api/v1/projects/${project.id}/members`, {
      token: owner.access,
      body: { user_id: user.id, role },
    })
    if (added.status !== 201) throw new Error(`add member failed: ${added.status} ${added.text}`)
  }
  return project
}

async function createProjectInSql(
  server: TestServer,
  owner: Someone,
  members: [Someone, ProjectRole][],
  name: string,
) {
  const sql = server.db.sql
  const [project] = await sql<{ id: string; name: string }[]>`
    insert into projects (name, owner_id)
    values (${name}, ${owner.id})
    returning id, name
  `
  if (!project) throw new Error('project insert returned nothing')
  const rows = [
    { project_id: project.id, user_id: owner.id, role: 'owner' },
    ...members.map(([user, role]) => ({ project_id: project.id, user_id: user.id, role })),
  ]
  await sql`insert into project_members ${sql(rows, 'project_id', 'user_id', 'role')}`
  return project
}

/** A task in `projectId` created by `creator`, written through SQL like createProject. */
export async function createTask(
  server: TestServer,
  projectId: string,
  creator: Someone,
  fields: { title?: string; description?: string; assignee_id?: string; tags?: string[] } = {},
) {
  const sql = server.db.sql
  const [task] = await sql<{ id: string; title: string; version: number }[]>`
    insert into tasks (title, description, project_id, created_by, assignee_id, tags)
    values (
      ${fields.title ?? `Task ${crypto.randomUUID().slice(0, 8)}`}, ${fields.description ?? null},
      ${projectId}, ${creator.id}, ${fields.assignee_id ?? null}, ${fields.tags ?? []}
    )
    returning id, title, version
  `
  if (!task) throw new Error('task insert returned nothing')
  return task
}
