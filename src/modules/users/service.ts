import type { AppContext, Principal } from '../../context'
import { conflict, invalid, notFound } from '../../problems'
import { paged } from '../../shared/model'
import { replacePasswordHash, revokeUserSessions, selectPasswordHash } from '../auth/queries'
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

/**
 * Changes the password and ends every other session of the user, in one transaction. The new
 * hash replaces only the hash that was verified; if another write came first (a login that
 * upgraded the hash, or another change), the current password is checked once more against it.
 */
export async function changePassword(
  ctx: AppContext,
  principal: Principal,
  input: { current_password: string; new_password: string },
) {
  const wrongCurrent = () =>
    invalid([{ path: '/current_password', message: 'is not the current password' }])
  let verified = await selectPasswordHash(ctx.sql, principal.userId)
  if (!verified || !(await ctx.passwords.verify(input.current_password, verified)))
    throw wrongCurrent()
  const hash = await ctx.passwords.hash(input.new_password)
  for (let attempt = 0; attempt < 3; attempt++) {
    const expected: string = verified
    const changed = await ctx.sql.begin(async (tx) => {
      if (!(await replacePasswordHash(tx, principal.userId, expected, hash))) return false
      await revokeUserSessions(tx, principal.userId, principal.sessionId)
      return true
    })
    if (changed) {
      ctx.sessions.forgetUser(principal.userId, principal.sessionId)
      return
    }
    verified = await selectPasswordHash(ctx.sql, principal.userId)
    if (!verified || !(await ctx.passwords.verify(input.current_password, verified)))
      throw wrongCurrent()
  }
  throw conflict('The password is being changed by another request; try again')
}

export async function listUsers(ctx: AppContext, principal: Principal, query: UserListQuery) {
  requirePermission(principal, 'users.read')
  const search = query.search?.trim() || undefined
  return paged(
    query,
    (limit, offset) => listActiveProfiles(ctx.sql, search, limit, offset),
    () => countActiveProfiles(ctx.sql, search),
  )
}

export async function getUserProfile(ctx: AppContext, principal: Principal, id: string) {
  requirePermission(principal, 'users.read')
  const profile = await selectPublicProfile(ctx.sql, id)
  if (!profile) throw notFound('No such user')
  return profile
}
