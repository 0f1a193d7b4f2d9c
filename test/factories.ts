import type { TestServer } from './helpers'

type ProjectRole = 'owner' | 'manager' | 'member' | 'viewer'
type Someone = { id: string }

/**
 * A project owned by `owner`, with `members` added in the given roles. Written through SQL so
 * tests of other resources do not depend on the project routes; the projects module replaces
 * the body with calls to its routes, keeping this signature.
 */
export async function createProject(
  server: TestServer,
  owner: Someone,
  members: [Someone, ProjectRole][] = [],
  fields: { name?: string } = {},
) {
  const sql = server.db.sql
  const [project] = await sql<{ id: string; name: string }[]>`
    insert into projects (name, owner_id)
    values (${fields.name ?? `Project ${crypto.randomUUID().slice(0, 8)}`}, ${owner.id})
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
