import type { Executor } from '../../db'
import { roleNamesOf } from '../users/queries'
import type { AdminUser } from './model'

export type UserFilter = { search?: string; is_active?: boolean; role?: string }

// Escapes LIKE wildcards so a search for "50%" matches the text and not a pattern.
const likePattern = (search: string) => `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

function userFilter(db: Executor, filter: UserFilter) {
  const pattern = filter.search ? likePattern(filter.search) : undefined
  return db`
    where true
      ${
        pattern
          ? db`and (
              u.email ilike ${pattern} or u.username ilike ${pattern}
              or u.first_name ilike ${pattern} or u.last_name ilike ${pattern}
            )`
          : db``
      }
      ${filter.is_active === undefined ? db`` : db`and u.is_active = ${filter.is_active}`}
      ${
        filter.role
          ? db`and exists (
              select 1
              from user_roles ur
              join roles r on r.id = ur.role_id
              where ur.user_id = u.id
                and r.name = ${filter.role}
            )`
          : db``
      }
  `
}

export async function listUsers(db: Executor, filter: UserFilter, limit: number, offset: number) {
  return db<AdminUser[]>`
    select
      u.id, u.email, u.username, u.first_name, u.last_name, u.avatar_url,
      u.is_active, u.email_verified, u.created_at, u.updated_at,
      ${roleNamesOf(db, 'u.id')} as roles
    from users u
    ${userFilter(db, filter)}
    order by u.created_at, u.id
    limit ${limit}
    offset ${offset}
  `
}

export async function countUsers(db: Executor, filter: UserFilter) {
  const [row] = await db<{ total: number }[]>`
    select count(*)::int as total
    from users u
    ${userFilter(db, filter)}
  `
  return row?.total ?? 0
}

// Serialises changes to roles and activation, so two admins demoting each other cannot both pass.
export async function lockAccountChanges(db: Executor) {
  await db`select pg_advisory_xact_lock(7306517114921347)`
}

/** Is the user active and holding a role with admin.access, as committed now? */
export async function isActiveAdmin(db: Executor, userId: string) {
  const [row] = await db<{ admin: boolean }[]>`
    select exists (
      select 1
      from users u
      join user_roles ur on ur.user_id = u.id
      join role_permissions rp on rp.role_id = ur.role_id
      join permissions p on p.id = rp.permission_id
      where u.id = ${userId}
        and u.is_active
        and p.name = 'admin.access'
    ) as admin
  `
  return row?.admin === true
}

/** Active users other than `userId` who hold admin.access. */
export async function countOtherActiveAdmins(db: Executor, userId: string) {
  const [row] = await db<{ total: number }[]>`
    select count(distinct u.id)::int as total
    from users u
    join user_roles ur on ur.user_id = u.id
    join role_permissions rp on rp.role_id = ur.role_id
    join permissions p on p.id = rp.permission_id
    where u.id <> ${userId}
      and u.is_active
      and p.name = 'admin.access'
  `
  return row?.total ?? 0
}

export async function selectAccountForUpdate(db: Executor, userId: string) {
  const [row] = await db<{ id: string; is_active: boolean; roles: string[] }[]>`
    select u.id, u.is_active, ${roleNamesOf(db, 'u.id')} as roles
    from users u
    where u.id = ${userId}
    for update
  `
  return row
}

/** Makes `names` the user's complete set of global roles. */
export async function replaceRoles(
  db: Executor,
  userId: string,
  names: string[],
  grantedBy: string,
) {
  await db`
    delete from user_roles ur
    using roles r
    where r.id = ur.role_id
      and ur.user_id = ${userId}
      and r.name <> all(${names}::text[])
  `
  await db`
    insert into user_roles (user_id, role_id, granted_by)
    select ${userId}, r.id, ${grantedBy}
    from roles r
    where r.name = any(${names}::text[])
    on conflict (user_id, role_id) do nothing
  `
}

export async function updateAccount(db: Executor, userId: string, isActive: boolean) {
  await db`
    update users
    set is_active = ${isActive}, updated_at = now()
    where id = ${userId}
  `
}

/** Row counts of the main tables, in one statement. */
export async function selectRowCounts(db: Executor) {
  const [row] = await db<Record<string, number>[]>`
    select
      (select count(*) from users)::int as users,
      (select count(*) from projects)::int as projects,
      (select count(*) from tasks)::int as tasks,
      (select count(*) from task_comments)::int as comments,
      (select count(*) from task_attachments)::int as attachments,
      (select count(*) from notifications)::int as notifications,
      (select count(*) from activity_log)::int as activity
  `
  return row as {
    users: number
    projects: number
    tasks: number
    comments: number
    attachments: number
    notifications: number
    activity: number
  }
}

/** The app's connections to this database by state, as the server sees them. */
export async function selectConnectionStates(db: Executor) {
  const [row] = await db<
    { active: number; idle: number; idle_in_transaction: number; total: number }[]
  >`
    select
      count(*) filter (where state = 'active')::int as active,
      count(*) filter (where state = 'idle')::int as idle,
      count(*) filter (where state like 'idle in transaction%')::int as idle_in_transaction,
      count(*)::int as total
    from pg_stat_activity
    where datname = current_database()
      and application_name = 'taskapi'
  `
  return row ?? { active: 0, idle: 0, idle_in_transaction: 0, total: 0 }
}
