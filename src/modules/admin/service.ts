import type { AppContext, Principal } from '../../context'
import type { Database } from '../../db'
import { conflict, forbidden, invalid, notFound } from '../../problems'
import { paged } from '../../shared/model'
import { changedFields } from '../activity/changes'
import { insertActivity } from '../activity/queries'
import { readFeed } from '../activity/service'
import { revokeUserSessions } from '../auth/queries'
import { requirePermission } from '../authz/policy'
import { selectUser } from '../users/queries'
import type { AdminLogsQuery, AdminUser, AdminUserChanges, AdminUserQuery } from './model'
import {
  countOtherActiveAdmins,
  countUsers,
  isActiveAdmin,
  listUsers as listUserRows,
  lockAccountChanges,
  replaceRoles,
  selectAccountForUpdate,
  selectConnectionStates,
  selectRowCounts,
  updateAccount,
} from './queries'
import { requestStats } from './request-stats'

const startedAt = new Date(Date.now() - performance.now())

export async function listUsers(ctx: AppContext, principal: Principal, query: AdminUserQuery) {
  requirePermission(principal, 'admin.access')
  const filter = {
    search: query.search?.trim() || undefined,
    is_active: query.is_active,
    role: query.role,
  }
  return paged(
    query,
    (limit, offset) => listUserRows(ctx.sql, filter, limit, offset),
    () => countUsers(ctx.sql, filter),
  )
}

/**
 * Sets a user's roles and activation. Under one lock: the acting admin must still be an active
 * admin, and the last active admin is never demoted or deactivated. Deactivation ends every
 * session of the user at once; role changes apply to their next request.
 */
export async function updateUser(
  ctx: AppContext,
  principal: Principal,
  userId: string,
  changes: AdminUserChanges,
) {
  requirePermission(principal, 'admin.access')
  if (userId === principal.userId) {
    if (changes.is_active === false)
      throw invalid([{ path: '/is_active', message: 'you cannot deactivate yourself' }])
    if (changes.roles && !changes.roles.includes('admin'))
      throw invalid([{ path: '/roles', message: 'you cannot remove your own admin role' }])
  }
  const changed = await ctx.sql.begin(async (tx) => {
    await lockAccountChanges(tx)
    if (!(await isActiveAdmin(tx, principal.userId)))
      throw forbidden('You are no longer an active admin')
    const before = await selectAccountForUpdate(tx, userId)
    if (!before) throw notFound('No such user')
    const after = {
      roles: changes.roles ? [...changes.roles].sort() : before.roles,
      is_active: changes.is_active ?? before.is_active,
    }
    const wasAdmin = before.is_active && before.roles.includes('admin')
    const staysAdmin = after.is_active && after.roles.includes('admin')
    if (wasAdmin && !staysAdmin && (await countOtherActiveAdmins(tx, userId)) === 0)
      throw conflict('This is the last active admin; make another admin first')
    const details = changedFields(before, after, ['roles', 'is_active'])
    if (Object.keys(details).length === 0) return false
    if (details.roles) await replaceRoles(tx, userId, after.roles, principal.userId)
    if (details.is_active) await updateAccount(tx, userId, after.is_active)
    if (details.is_active && !after.is_active) await revokeUserSessions(tx, userId)
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: null,
      action: 'user.updated',
      entity_type: 'user',
      entity_id: userId,
      details,
    })
    return true
  })
  // Cached sessions are dropped: ended ones answer 401, live ones reload their permissions.
  if (changed) ctx.sessions.forgetUser(userId)
  return (await selectUser(ctx.sql, userId)) as AdminUser
}

export async function metrics(ctx: AppContext, principal: Principal, db: Database) {
  requirePermission(principal, 'admin.access')
  const [rows, connections] = await Promise.all([
    selectRowCounts(ctx.sql),
    selectConnectionStates(ctx.sql),
  ])
  const memory = process.memoryUsage()
  return {
    started_at: startedAt.toISOString(),
    uptime_seconds: Math.round(performance.now() / 10) / 100,
    requests: requestStats(),
    database: {
      mode: db.mode,
      pool_max: db.mode === 'embedded' ? 1 : ctx.config.db.poolMax,
      connections,
    },
    rows,
    memory: { rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed },
  }
}

export async function logs(ctx: AppContext, principal: Principal, query: AdminLogsQuery) {
  requirePermission(principal, 'admin.access')
  return readFeed(
    ctx.sql,
    {
      userId: query.user_id,
      projectId: query.project_id,
      action: query.action,
      entityType: query.entity_type,
    },
    query,
  )
}
