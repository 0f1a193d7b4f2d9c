import type { Executor } from '../../db'
import { permissionNamesOf, roleNamesOf } from '../users/queries'
import type { ApiToken } from './model'

const columns = (db: Executor) => db`
  id, name, prefix, scopes, project_ids, created_at, expires_at, last_used_at
`

export type NewToken = {
  user_id: string
  name: string
  prefix: string
  token_hash: string
  scopes: string[]
  project_ids: string[] | null
  expires_at: string | null
}

export async function insertToken(db: Executor, token: NewToken) {
  const [row] = await db<ApiToken[]>`
    insert into api_tokens (user_id, name, prefix, token_hash, scopes, project_ids, expires_at)
    values (
      ${token.user_id}, ${token.name}, ${token.prefix}, ${token.token_hash},
      ${token.scopes}::text[], ${token.project_ids}::uuid[], ${token.expires_at}::timestamptz
    )
    returning ${columns(db)}
  `
  return row as ApiToken
}

/** The owner's tokens that still work (not revoked, not expired), newest first. */
export async function listLiveTokens(db: Executor, userId: string) {
  return db<ApiToken[]>`
    select ${columns(db)}
    from api_tokens
    where user_id = ${userId}
      and revoked_at is null
      and (expires_at is null or expires_at > now())
    order by created_at desc, id desc
  `
}

/** Revokes one of the owner's live tokens; true when there was one. */
export async function revokeToken(db: Executor, userId: string, tokenId: string) {
  const rows = await db`
    update api_tokens
    set revoked_at = now()
    where id = ${tokenId}
      and user_id = ${userId}
      and revoked_at is null
  `
  return rows.count === 1
}

/** Of these projects, the ones the user is not a member of (or that do not exist). */
export async function selectForeignProjects(db: Executor, userId: string, projectIds: string[]) {
  const rows = await db<{ id: string }[]>`
    select wanted.id::text as id
    from unnest(${projectIds}::uuid[]) as wanted(id)
    where not exists (
      select 1 from project_members pm
      where pm.project_id = wanted.id and pm.user_id = ${userId}
    )
  `
  return rows.map((row) => row.id)
}

export type TokenPrincipalRow = {
  id: string
  user_id: string
  live: boolean
  scopes: string[]
  project_ids: string[] | null
  expires_at: string | null
  roles: string[]
  permissions: string[]
}

/** The token of this hash with its owner's current roles and permissions. */
export async function selectTokenPrincipal(db: Executor, tokenHash: string) {
  const [row] = await db<TokenPrincipalRow[]>`
    select
      k.id,
      k.user_id,
      (k.revoked_at is null and (k.expires_at is null or k.expires_at > now()) and u.is_active)
        as live,
      k.scopes,
      k.project_ids,
      k.expires_at,
      ${roleNamesOf(db, 'k.user_id')} as roles,
      ${permissionNamesOf(db, 'k.user_id')} as permissions
    from api_tokens k
    join users u on u.id = k.user_id
    where k.token_hash = ${tokenHash}
  `
  return row
}

/** Stamps `last_used_at`, unless it was stamped within the last minute. */
export async function touchToken(db: Executor, tokenId: string) {
  await db`
    update api_tokens
    set last_used_at = now()
    where id = ${tokenId}
      and (last_used_at is null or last_used_at < now() - interval '1 minute')
  `
}
