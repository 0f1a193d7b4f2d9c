import type { Executor } from '../../../db'
import type { ProjectRole } from '../../authz/policy'
import type { Member } from './model'

export async function listMembers(db: Executor, projectId: string, limit: number, offset: number) {
  return db<Member[]>`
    select pm.user_id, u.username, u.first_name, u.last_name, pm.role, pm.joined_at
    from project_members pm
    join users u on u.id = pm.user_id
    where pm.project_id = ${projectId}
    order by pm.joined_at, pm.user_id
    limit ${limit}
    offset ${offset}
  `
}

export async function countMembers(db: Executor, projectId: string) {
  const [row] = await db<{ total: number }[]>`
    select count(*)::int as total
    from project_members
    where project_id = ${projectId}
  `
  return row?.total ?? 0
}

export async function selectMember(db: Executor, projectId: string, userId: string) {
  const [row] = await db<Member[]>`
    select pm.user_id, u.username, u.first_name, u.last_name, pm.role, pm.joined_at
    from project_members pm
    join users u on u.id = pm.user_id
    where pm.project_id = ${projectId}
      and pm.user_id = ${userId}
  `
  return row
}

/** The member's role, locked until the transaction ends so two changes cannot interleave. */
export async function selectMemberRoleForUpdate(db: Executor, projectId: string, userId: string) {
  const [row] = await db<{ role: ProjectRole }[]>`
    select role
    from project_members
    where project_id = ${projectId}
      and user_id = ${userId}
    for update
  `
  return row?.role
}

export async function selectActiveUsername(db: Executor, userId: string) {
  const [row] = await db<{ username: string }[]>`
    select username
    from users
    where id = ${userId}
      and is_active
  `
  return row?.username
}

/** Adds a member; false when the user already is one. */
export async function insertMemberIfAbsent(
  db: Executor,
  projectId: string,
  userId: string,
  role: ProjectRole,
) {
  const rows = await db`
    insert into project_members (project_id, user_id, role)
    values (${projectId}, ${userId}, ${role})
    on conflict (project_id, user_id) do nothing
    returning user_id
  `
  return rows.length > 0
}

export async function updateMemberRole(
  db: Executor,
  projectId: string,
  userId: string,
  role: ProjectRole,
) {
  await db`
    update project_members
    set role = ${role}
    where project_id = ${projectId}
      and user_id = ${userId}
  `
}

export async function deleteMember(db: Executor, projectId: string, userId: string) {
  await db`
    delete from project_members
    where project_id = ${projectId}
      and user_id = ${userId}
  `
}

/** Ownership moves: the project row names its new owner. */
export async function updateProjectOwner(db: Executor, projectId: string, ownerId: string) {
  await db`
    update projects
    set owner_id = ${ownerId}, updated_at = now()
    where id = ${projectId}
  `
}

export async function selectProjectName(db: Executor, projectId: string) {
  const [row] = await db<{ name: string }[]>`
    select name
    from projects
    where id = ${projectId}
  `
  return row?.name
}

/** Makes every current owner a manager (ownership is being handed on); returns who they were. */
export async function demoteOwners(db: Executor, projectId: string) {
  const rows = await db<{ user_id: string }[]>`
    update project_members
    set role = 'manager'
    where project_id = ${projectId}
      and role = 'owner'
    returning user_id
  `
  return rows.map((r) => r.user_id)
}

/** A member who leaves keeps no tasks: their assignments in the project are cleared. */
export async function unassignMemberTasks(db: Executor, projectId: string, userId: string) {
  const rows = await db`
    update tasks
    set assignee_id = null, version = version + 1, updated_at = now()
    where project_id = ${projectId}
      and assignee_id = ${userId}
    returning id
  `
  return rows.length
}

/**
 * Serialises membership changes of one project (two ownership hand-overs at once would otherwise
 * leave two owners). No key update: tasks can still be added meanwhile.
 */
export async function lockProjectMembership(db: Executor, projectId: string) {
  await db`
    select id
    from projects
    where id = ${projectId}
    for no key update
  `
}
