import { createHash, randomBytes } from 'node:crypto'
import type { AppContext, Principal } from '../../context'
import { describeError } from '../../logger'
import { invalid, notFound, unauthorized } from '../../problems'
import { INSTANT_RANGE, storableTime } from '../../shared/instants'
import type { TokenCreate } from './model'
import {
  insertToken,
  listLiveTokens,
  revokeToken,
  selectForeignProjects,
  selectTokenPrincipal,
  touchToken,
} from './queries'

export const TOKEN_PREFIX = 'tapi_'

export const isApiToken = (bearer: string) => bearer.startsWith(TOKEN_PREFIX)

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

export async function createToken(ctx: AppContext, principal: Principal, input: TokenCreate) {
  const errors = []
  const expiry = input.expires_at === undefined ? undefined : storableTime(input.expires_at)
  if (input.expires_at !== undefined && expiry === undefined)
    errors.push({ path: '/expires_at', message: `must be ${INSTANT_RANGE}` })
  else if (expiry !== undefined && !(expiry > Date.now()))
    errors.push({ path: '/expires_at', message: 'must be in the future' })
  const projectIds = input.project_ids && [
    ...new Set(input.project_ids.map((id) => id.toLowerCase())),
  ]
  if (projectIds) {
    const foreign = await selectForeignProjects(ctx.sql, principal.userId, projectIds)
    if (foreign.length > 0)
      errors.push({
        path: '/project_ids',
        message: `you are not a member of: ${foreign.join(', ')}`,
      })
  }
  if (errors.length > 0) throw invalid(errors)
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url')
  const row = await insertToken(ctx.sql, {
    user_id: principal.userId,
    name: input.name,
    prefix: token.slice(0, 12),
    token_hash: hashToken(token),
    scopes: input.scopes,
    project_ids: projectIds ?? null,
    expires_at: expiry === undefined ? null : new Date(expiry).toISOString(),
  })
  return { ...row, token }
}

export async function listTokens(ctx: AppContext, principal: Principal) {
  return [...(await listLiveTokens(ctx.sql, principal.userId))]
}

/** Revokes the token here and, through the session cache's announcements, on every instance. */
export async function deleteToken(ctx: AppContext, principal: Principal, tokenId: string) {
  if (!(await revokeToken(ctx.sql, principal.userId, tokenId))) throw notFound('No such token')
  ctx.sessions.forget(tokenId)
}

// Token hash -> token id (a fixed pairing), so the session cache can be keyed by the token id,
// which is what revocation announces.
const idsByHash = new Map<string, string>()
const MAX_IDS = 10_000
// When each token's last_used_at was last written from this process.
const touchedAt = new Map<string, number>()
const TOUCH_EVERY_MS = 60_000

/** Resolves a `tapi_` bearer to its owner's principal, limited by the token's scopes and projects. */
export async function authenticateApiToken(ctx: AppContext, bearer: string): Promise<Principal> {
  const hash = hashToken(bearer)
  const knownId = idsByHash.get(hash)
  let principal = knownId === undefined ? undefined : ctx.sessions.get(knownId)
  if (principal === undefined) {
    const readAt = performance.now()
    const row = await selectTokenPrincipal(ctx.sql, hash)
    if (!row) throw unauthorized('Invalid API token')
    if (idsByHash.size >= MAX_IDS) idsByHash.clear()
    idsByHash.set(hash, row.id)
    principal = row.live
      ? {
          userId: row.user_id,
          sessionId: row.id,
          roles: row.roles,
          permissions: new Set(row.permissions),
          token: {
            scopes: new Set(row.scopes),
            projectIds: row.project_ids ?? undefined,
            expiresAt: row.expires_at ? Date.parse(row.expires_at) : undefined,
          },
        }
      : null
    ctx.sessions.set(row.id, principal, readAt, row.user_id)
  }
  // A cached principal outlives the token's expiry by up to SESSION_CACHE_TTL_MS otherwise.
  const expiresAt = principal?.token?.expiresAt
  if (!principal || (expiresAt !== undefined && expiresAt <= Date.now()))
    throw unauthorized('This API token has been revoked or has expired')
  touch(ctx, principal.sessionId)
  return principal
}

/** Writes last_used_at at most once a minute per token from this process (and the SQL checks). */
function touch(ctx: AppContext, tokenId: string) {
  const now = performance.now()
  const last = touchedAt.get(tokenId)
  if (last !== undefined && now - last < TOUCH_EVERY_MS) return
  if (touchedAt.size >= MAX_IDS) touchedAt.clear()
  touchedAt.set(tokenId, now)
  touchToken(ctx.sql, tokenId).catch((error: unknown) =>
    ctx.log.warn('token last_used_at update failed', describeError(error)),
  )
}
