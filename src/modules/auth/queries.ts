import type { Executor } from '../../db'
import { permissionNamesOf, roleNamesOf } from '../users/queries'

export type Credentials = { id: string; password_hash: string; is_active: boolean }

export async function selectCredentialsByEmail(db: Executor, email: string) {
  const [row] = await db<Credentials[]>`
    select id, password_hash, is_active
    from users
    where lower(email) = lower(${email})
  `
  return row
}

export async function selectPasswordHash(db: Executor, userId: string) {
  const [row] = await db<{ password_hash: string }[]>`
    select password_hash
    from users
    where id = ${userId}
  `
  return row?.password_hash
}

/**
 * Replaces the hash only if it is still the one the caller verified (compare-and-set), so a
 * write based on a stale read cannot undo a concurrent password change; true when it did.
 */
export async function replacePasswordHash(
  db: Executor,
  userId: string,
  verifiedHash: string,
  newHash: string,
) {
  const rows = await db`
    update users
    set password_hash = ${newHash}, updated_at = now()
    where id = ${userId}
      and password_hash = ${verifiedHash}
  `
  return rows.count === 1
}

/** The account's hash and state, locked until the transaction ends (a password change waits). */
export async function lockCredentials(db: Executor, userId: string) {
  const [row] = await db<{ password_hash: string; is_active: boolean }[]>`
    select password_hash, is_active
    from users
    where id = ${userId}
    for no key update
  `
  return row
}

export type NewUser = {
  email: string
  username: string
  password_hash: string
  first_name: string | null
  last_name: string | null
}

export async function insertUser(db: Executor, user: NewUser) {
  const [row] = await db<{ id: string }[]>`
    insert into users ${db(user, 'email', 'username', 'password_hash', 'first_name', 'last_name')}
    returning id
  `
  return row?.id as string
}

// Serialises registrations so that exactly one user can be the first, and so the admin.
export async function lockRegistrations(db: Executor) {
  await db`select pg_advisory_xact_lock(7306517114921346)`
}

/** The very first user becomes admin; everyone after is a developer. */
export async function grantInitialRole(db: Executor, userId: string) {
  await db`
    insert into user_roles (user_id, role_id)
    select ${userId}, r.id
    from roles r
    where r.name = case
      when exists (select 1 from users where id <> ${userId}) then 'developer'
      else 'admin'
    end
  `
}

export type NewSession = {
  user_id: string
  token_hash: string
  ttl_seconds: number
  user_agent: string | null
  ip_address: string | null
}

export async function insertSession(db: Executor, session: NewSession) {
  const [row] = await db<{ id: string }[]>`
    insert into user_sessions (user_id, token_hash, expires_at, user_agent, ip_address)
    values (
      ${session.user_id},
      ${session.token_hash},
      now() + make_interval(secs => ${session.ttl_seconds}),
      ${session.user_agent},
      ${session.ip_address}
    )
    returning id
  `
  return row?.id as string
}

/** Swaps a live refresh token for the next one; only one of concurrent callers can win. */
export async function rotateSessionToken(
  db: Executor,
  oldHash: string,
  newHash: string,
  ttlSeconds: number,
) {
  const [row] = await db<{ id: string; user_id: string }[]>`
    update user_sessions s
    set token_hash = ${newHash},
      last_used_at = now(),
      expires_at = now() + make_interval(secs => ${ttlSeconds})
    from users u
    where s.token_hash = ${oldHash}
      and s.revoked_at is null
      and s.expires_at > now()
      and u.id = s.user_id
      and u.is_active
    returning s.id, s.user_id
  `
  return row
}

export async function insertRetiredToken(db: Executor, tokenHash: string, sessionId: string) {
  await db`
    insert into user_session_retired_tokens (token_hash, session_id)
    values (${tokenHash}, ${sessionId})
  `
}

export async function selectRetiredTokenSession(db: Executor, tokenHash: string) {
  const [row] = await db<{ session_id: string; user_id: string }[]>`
    select t.session_id, s.user_id
    from user_session_retired_tokens t
    join user_sessions s on s.id = t.session_id
    where t.token_hash = ${tokenHash}
  `
  return row
}

/** Ends one session of a user; returns whether a live one was ended. */
export async function revokeSession(db: Executor, sessionId: string, userId: string) {
  const rows = await db`
    update user_sessions
    set revoked_at = now()
    where id = ${sessionId}
      and user_id = ${userId}
      and revoked_at is null
      and expires_at > now()
    returning id
  `
  return rows.length > 0
}

export async function revokeUserSessions(db: Executor, userId: string, exceptSessionId?: string) {
  await db`
    update user_sessions
    set revoked_at = now()
    where user_id = ${userId}
      and revoked_at is null
      ${exceptSessionId ? db`and id <> ${exceptSessionId}` : db``}
  `
}

export type SessionPrincipalRow = {
  user_id: string
  live: boolean
  roles: string[]
  permissions: string[]
}

/** A session with its user's current roles and permissions; `live` is false once it has ended. */
export async function selectSessionPrincipal(db: Executor, sessionId: string) {
  const [row] = await db<SessionPrincipalRow[]>`
    select
      s.user_id,
      (s.revoked_at is null and s.expires_at > now() and u.is_active) as live,
      ${roleNamesOf(db, 's.user_id')} as roles,
      ${permissionNamesOf(db, 's.user_id')} as permissions
    from user_sessions s
    join users u on u.id = s.user_id
    where s.id = ${sessionId}
  `
  return row
}

export type SessionRow = {
  id: string
  created_at: string
  last_used_at: string
  expires_at: string
  user_agent: string | null
  ip_address: string | null
}

export async function listLiveSessions(db: Executor, userId: string) {
  return db<SessionRow[]>`
    select id, created_at, last_used_at, expires_at, user_agent, host(ip_address) as ip_address
    from user_sessions
    where user_id = ${userId}
      and revoked_at is null
      and expires_at > now()
    order by last_used_at desc, id desc
  `
}

/** Deletes sessions that expired or were revoked more than `keepDays` ago; returns how many. */
export async function deleteEndedSessions(db: Executor, keepDays: number) {
  const rows = await db`
    delete from user_sessions
    where expires_at < now() - make_interval(days => ${keepDays})
      or revoked_at < now() - make_interval(days => ${keepDays})
    returning id
  `
  return rows.length
}
