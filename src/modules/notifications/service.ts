import type { AppContext, Principal } from '../../context'
import { notFound } from '../../problems'
import { cursorPagination, decodeCursor, pageOf } from '../../shared/keyset'
import type { NotificationListQuery } from './model'
import {
  countNotifications,
  countUnreadNotifications,
  deleteNotification,
  listNotifications,
  markAllNotificationsRead,
  markNotificationRead,
} from './queries'

// Another user's notification answers like a missing one: its existence is not revealed. So does
// one outside the projects an API token is limited to (list, count, mark read and delete alike).
const noSuchNotification = () => notFound('No such notification')

/** The caller's notifications, newest first, with the unread count. */
export async function listMyNotifications(
  ctx: AppContext,
  principal: Principal,
  query: NotificationListQuery,
) {
  const page = query.page ?? 1
  const limit = query.limit ?? 20
  const before = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
  const unreadOnly = query.unread === true
  const [rows, counts] = await Promise.all([
    listNotifications(ctx.sql, principal.userId, {
      unreadOnly,
      before,
      limit,
      offset: (page - 1) * limit,
      projectIds: principal.token?.projectIds,
    }),
    countNotifications(ctx.sql, principal.userId, unreadOnly, principal.token?.projectIds),
  ])
  const { data, next } = pageOf(rows, limit)
  return {
    data,
    unread_count: counts.unread,
    pagination: cursorPagination(page, limit, before ? null : counts.total, next),
  }
}

export async function countMyUnread(ctx: AppContext, principal: Principal) {
  return {
    count: await countUnreadNotifications(ctx.sql, principal.userId, principal.token?.projectIds),
  }
}

export async function markRead(ctx: AppContext, principal: Principal, id: string) {
  const notification = await markNotificationRead(
    ctx.sql,
    principal.userId,
    id,
    principal.token?.projectIds,
  )
  if (!notification) throw noSuchNotification()
  return notification
}

export async function markAllRead(ctx: AppContext, principal: Principal) {
  await markAllNotificationsRead(ctx.sql, principal.userId, principal.token?.projectIds)
}

export async function removeNotification(ctx: AppContext, principal: Principal, id: string) {
  if (!(await deleteNotification(ctx.sql, principal.userId, id, principal.token?.projectIds)))
    throw noSuchNotification()
}
