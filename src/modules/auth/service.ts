import type { AppContext, Principal } from '../../context'
import type { Executor, Sql } from '../../db'
import { describeError, type Logger } from '../../logger'
import { conflict, notFound, unauthorized } from '../../problems'
import { authenticateApiToken, isApiToken } from '../tokens/service'
import { selectUser } from '../users/queries'
import type { AuthTokens, Login, Register } from './model'
import {
  deleteEndedSessions,
  grantInitialRole,
  insertRetiredToken,
  insertSession,
  insertUser,
  listLiveSessions,
  lockCredentials,
  lockRegistrations,
  replacePasswordHash,
  revokeSession,
  revokeUserSessions,
  rotateSessionToken,
  selectCredentialsByEmail,
  selectRetiredTokenSession,
  selectSessionPrincipal,
} from './queries'
import { hashRefreshToken, newRefreshToken } from './tokens'

export type ClientInfo = { userAgent: string | null; ip: string | null }

const BAD_CREDENTIALS = 'Invalid email or password'

export async function register(ctx: AppContext, input: Register, client: ClientInfo) {
  const passwordHash = await ctx.passwords.hash(input.password)
  const refresh = newRefreshToken()
  const created = await ctx.sql
    .begin(async (tx) => {
      await lockRegistrations(tx)
      const userId = await insertUser(tx, {
        email: input.email,
        username: input.username,
        password_hash: passwordHash,
        first_name: input.first_name ?? null,
        last_name: input.last_name ?? null,
      })
      await grantInitialRole(tx, userId)
      const sessionId = await openSession(ctx, tx, userId, refresh.hash, client)
      return { userId, sessionId }
    })
    .catch(duplicateAccount)
  return issueTokens(ctx, created.userId, created.sessionId, refresh.token)
}

function duplicateAccount(error: unknown): never {
  const constraint = (error as { constraint_name?: string }).constraint_name
  if (constraint === 'users_email_lower_key') throw conflict('This email is already registered')
  if (constraint === 'users_username_lower_key') throw conflict('This username is already taken')
  throw error
}

/** Same answer, and the same hashing work, whether the email is unknown or the password wrong. */
export async function login(ctx: AppContext, input: Login, client: ClientInfo) {
  // PostgreSQL cannot store a NUL byte, so no email holds one: answer as for any unknown email.
  const account = input.email.includes('\u0000')
    ? undefined
    : await selectCredentialsByEmail(ctx.sql, input.email)
  const ok = await ctx.passwords.verify(input.password, account?.password_hash)
  if (!account || !ok || !account.is_active) throw unauthorized(BAD_CREDENTIALS)
  const rehash = ctx.passwords.needsRehash(account.password_hash)
    ? await ctx.passwords.hash(input.password)
    : undefined
  const refresh = newRefreshToken()
  const sessionId = await ctx.sql.begin(async (tx) => {
    // The password may have changed, or the account been deactivated, while argon2 ran: open the
    // session only if the verified hash is still current, holding the row so that a change that
    // starts now waits for this commit and then revokes the new session with the others.
    const current = await lockCredentials(tx, account.id)
    if (current?.password_hash !== account.password_hash || !current.is_active) return undefined
    if (rehash) await replacePasswordHash(tx, account.id, account.password_hash, rehash)
    return openSession(ctx, tx, account.id, refresh.hash, client)
  })
  if (!sessionId) throw unauthorized(BAD_CREDENTIALS)
  return issueTokens(ctx, account.id, sessionId, refresh.token)
}

/**
 * Rotates the refresh token. A token that was already rotated out means it leaked or was
 * replayed: the whole session ends (RFC 9700 section 4.14.2), so clients must not refresh in parallel.
 */
export async function refresh(ctx: AppContext, refreshToken: string) {
  const oldHash = hashRefreshToken(refreshToken)
  const next = newRefreshToken()
  const outcome = await ctx.sql.begin(async (tx) => {
    const rotated = await rotateSessionToken(tx, oldHash, next.hash, ctx.config.refreshTokenTtl)
    if (rotated) {
      await insertRetiredToken(tx, oldHash, rotated.id)
      return { rotated }
    }
    const reused = await selectRetiredTokenSession(tx, oldHash)
    if (reused) await revokeSession(tx, reused.session_id, reused.user_id)
    return { reused }
  })
  if (outcome.reused) {
    ctx.sessions.forget(outcome.reused.session_id)
    ctx.log.warn('refresh token reused; session revoked', {
      session_id: outcome.reused.session_id,
      user_id: outcome.reused.user_id,
    })
    throw unauthorized('This refresh token was already used; the session has been ended')
  }
  if (!outcome.rotated) throw unauthorized('Invalid or expired refresh token')
  return issueTokens(ctx, outcome.rotated.user_id, outcome.rotated.id, next.token)
}

export async function logout(ctx: AppContext, principal: Principal) {
  await revokeSession(ctx.sql, principal.sessionId, principal.userId)
  ctx.sessions.forget(principal.sessionId)
}

export async function logoutEverywhere(ctx: AppContext, userId: string) {
  await revokeUserSessions(ctx.sql, userId)
  ctx.sessions.forgetUser(userId)
}

export async function listSessions(ctx: AppContext, principal: Principal) {
  const rows = await listLiveSessions(ctx.sql, principal.userId)
  return rows.map((row) => ({ ...row, current: row.id === principal.sessionId }))
}

export async function endSession(ctx: AppContext, principal: Principal, sessionId: string) {
  if (!(await revokeSession(ctx.sql, sessionId, principal.userId)))
    throw notFound('No such session')
  ctx.sessions.forget(sessionId)
}

const BEARER = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/i

/** Resolves the caller from `Authorization: Bearer`; the session must still be live. */
export async function authenticate(ctx: AppContext, header: string | null): Promise<Principal> {
  const token = header ? BEARER.exec(header)?.[1] : undefined
  if (!token) throw unauthorized()
  if (isApiToken(token)) return authenticateApiToken(ctx, token)
  const claims = await ctx.tokens.verify(token)
  if (!claims) throw unauthorized('Invalid or expired access token')
  const principal = await sessionPrincipal(ctx, claims.sid)
  if (!principal || principal.userId !== claims.sub) throw unauthorized('This session has ended')
  return principal
}

async function sessionPrincipal(ctx: AppContext, sessionId: string) {
  const cached = ctx.sessions.get(sessionId)
  if (cached !== undefined) return cached
  const readAt = performance.now()
  const row = await selectSessionPrincipal(ctx.sql, sessionId)
  const principal = row?.live
    ? {
        userId: row.user_id,
        sessionId,
        roles: row.roles,
        permissions: new Set(row.permissions),
      }
    : null
  ctx.sessions.set(sessionId, principal, readAt, row?.user_id)
  return principal
}

function openSession(
  ctx: AppContext,
  db: Executor,
  userId: string,
  tokenHash: string,
  client: ClientInfo,
) {
  return insertSession(db, {
    user_id: userId,
    token_hash: tokenHash,
    ttl_seconds: ctx.config.refreshTokenTtl,
    user_agent: client.userAgent?.slice(0, 512) ?? null,
    ip_address: client.ip,
  })
}

async function issueTokens(
  ctx: AppContext,
  userId: string,
  sessionId: string,
  refreshToken: string,
): Promise<AuthTokens> {
  const [user, accessToken] = await Promise.all([
    selectUser(ctx.sql, userId),
    ctx.tokens.sign({ sub: userId, sid: sessionId }),
  ])
  if (!user) throw unauthorized(BAD_CREDENTIALS)
  return {
    access_token: accessToken,
    refresh_token: refreshToken,
    token_type: 'Bearer',
    expires_in: ctx.config.accessTokenTtl,
    user,
  }
}

const PURGE_EVERY_MS = 6 * 60 * 60 * 1000
// Ended sessions stay a week, so a replayed token from then still reads as reuse in the logs.
const KEEP_ENDED_DAYS = 7

/** Deletes long-ended sessions now and every six hours; returns the function that stops it. */
export function scheduleSessionPurge(sql: Sql, log: Logger) {
  const run = () =>
    deleteEndedSessions(sql, KEEP_ENDED_DAYS).then(
      (count) => count > 0 && log.info('ended sessions purged', { count }),
      (error: unknown) => log.warn('session purge failed', describeError(error)),
    )
  void run()
  const timer = setInterval(run, PURGE_EVERY_MS)
  timer.unref()
  return () => clearInterval(timer)
}
