import type { Executor } from '../../db'
import type { PublicProfile, UpdateMe, User } from './model'

/** The names of a user's global roles, sorted, as a SQL fragment over the given id column. */
export function roleNamesOf(db: Executor, userIdColumn: string) {
  return db`
    array(
      select r.name::text
      from user_roles ur
      join roles r on r.id = ur.role_id
      where ur.user_id = ${db(userIdColumn)}
      order by r.name
    )
  `
}

/** The names of every permission a user's roles grant, as a SQL fragment over the id column. */
export function permissionNamesOf(db: Executor, userIdColumn: string) {
  return db`
    array(
      select distinct p.name::text
      from user_roles ur
      join role_permissions rp on rp.role_id = ur.role_id
      join permissions p on p.id = rp.permission_id
      where ur.user_id = ${db(userIdColumn)}
    )
  `
}

export async function selectUser(db: Executor, id: string) {
  const [row] = await db<User[]>`
    select
      u.id, u.email, u.username, u.first_name, u.last_name, u.avatar_url,
      u.is_active, u.email_verified, u.created_at, u.updated_at,
      ${roleNamesOf(db, 'u.id')} as roles
    from users u
    where u.id = ${id}
  `
  return row
}

/** Deactivated users are hidden here as in the list. */
export async function selectPublicProfile(db: Executor, id: string) {
  const [row] = await db<PublicProfile[]>`
    select id, username, first_name, last_name, avatar_url
    from users
    where id = ${id}
      and is_active
  `
  return row
}

/** Applies only the fields present in `changes`; returns false when nothing was there to apply. */
export async function updateProfile(db: Executor, id: string, changes: UpdateMe) {
  const columns = (['username', 'first_name', 'last_name', 'avatar_url'] as const).filter(
    (c) => changes[c] !== undefined,
  )
  if (columns.length === 0) return false
  await db`
    update users
    set ${db(changes, ...columns)}, updated_at = now()
    where id = ${id}
  `
  return true
}

// Escapes LIKE wildcards so a search for "50%" matches the text and not a pattern.
const likePattern = (search: string) => `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

function profileFilter(db: Executor, search: string | undefined) {
  if (!search) return db``
  const pattern = likePattern(search)
  return db`and (username ilike ${pattern} or first_name ilike ${pattern} or last_name ilike ${pattern})`
}

export async function listActiveProfiles(
  db: Executor,
  search: string | undefined,
  limit: number,
  offset: number,
) {
  return db<PublicProfile[]>`
    select id, username, first_name, last_name, avatar_url
    from users
    where is_active
      ${profileFilter(db, search)}
    order by lower(username), id
    limit ${limit}
    offset ${offset}
  `
}

export async function countActiveProfiles(db: Executor, search: string | undefined) {
  const [row] = await db<{ total: number }[]>`
    select count(*)::int as total
    from users
    where is_active
      ${profileFilter(db, search)}
  `
  return row?.total ?? 0
}
