import type { AppContext, Principal } from '../../context'
import { conflict, invalid, notFound } from '../../problems'
import { pagination } from '../../shared/model'
import { revokeUserSessions, selectPasswordHash, updatePasswordHash } from '../auth/queries'
import { requirePermission } from '../authz/policy'
import type { UpdateMe, UserListQuery } from './model'
import {
  countActiveProfiles,
  listActiveProfiles,
  selectPublicProfile,
  selectUser,
  updateProfile,
} from './queries'

export async function getMe(ctx: AppContext, principal: Principal) {
  const user = await selectUser(ctx.sql, principal.userId)
  if (!user) throw notFound('No such user')
  return user
}

export async function updateMe(ctx: AppContext, principal: Principal, changes: UpdateMe) {
  await updateProfile(ctx.sql, principal.userId, changes).catch((error: unknown) => {
    if ((error as { constraint_name?: string }).constraint_name === 'users_username_lower_key')
      throw conflict('This username is already taken')
    throw error
  })
  return getMe(ctx, principal)
}

/** Changes the password and ends every other session of the user. */
export async function changePassword(
  ctx: AppContext,
  principal: Principal,
  input: { current_password: string; new_password: string },
) {
  const current = await selectPasswordHash(ctx.sql, principal.userId)
  if (!(await ctx.passwords.verify(input.current_password, current)))
    throw invalid([{ path: '/current_password', message: 'is not the current password' }])
  const hash = await ctx.passwords.hash(input.new_password)
  await ctx.sql.begin(async (tx) => {
    await updatePasswordHash(tx, principal.userId, hash)
    await revokeUserSessions(tx, principal.userId, principal.sessionId)
  })
  ctx.sessions.forgetUser(principal.userId, principal.sessionId)
}

export async function listUsers(ctx: AppContext, principal: Principal, query: UserListQuery) {
  requirePermission(principal, 'users.read')
  const page = query.page ?? 1
  const limit = query.limit ?? 20
  const search = query.search?.trim() || undefined
  const [data, total] = await Promise.all([
    listActiveProfiles(ctx.sql, search, limit, (page - 1) * limit),
    countActiveProfiles(ctx.sql, search),
  ])
  return { data, pagination: pagination(page, limit, total) }
}

export async function getUserProfile(ctx: AppContext, principal: Principal, id: string) {
  requirePermission(principal, 'users.read')
  const profile = await selectPublicProfile(ctx.sql, id)
  if (!profile) throw notFound('No such user')
  return profile
}
