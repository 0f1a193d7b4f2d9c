import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { NotificationList, NotificationModel } from './model'
import {
  countMyUnread,
  listMyNotifications,
  markAllRead,
  markRead,
  removeNotification,
} from './service'

const NOT_YOURS = 'Another user’s notification answers 404, the same as one that does not exist.'

// The fixed paths (unread-count, read-all) are declared before /:id; Elysia's router also
// prefers a static segment over a parameter.
export const notificationRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ prefix: '/notifications', detail: { tags: ['Notifications'] } })
    .use(guard)
    .get('', ({ principal, query }) => listMyNotifications(ctx, principal, query), {
      auth: true,
      query: NotificationModel.listQuery,
      response: { 200: NotificationList, ...problems(401, 422) },
      detail: {
        summary: 'The caller’s notifications, newest first, with the unread count',
        description:
          'Pages by `page`/`limit`, or by keyset with `cursor` (then `total` and `pages` are null). `unread_count` counts every unread notification whatever the filter.',
      },
    })
    .get('/unread-count', ({ principal }) => countMyUnread(ctx, principal), {
      auth: true,
      response: { 200: NotificationModel.unreadCount, ...problems(401) },
      detail: { summary: 'How many of the caller’s notifications are unread' },
    })
    .put(
      '/read-all',
      ({ principal, set }) => markAllRead(ctx, principal).then(() => noContent(set)),
      {
        auth: true,
        response: { 204: NoContent, ...problems(401) },
        detail: { summary: 'Mark every notification of the caller read' },
      },
    )
    .put('/:id/read', ({ principal, params }) => markRead(ctx, principal, params.id), {
      auth: true,
      params: IdParams,
      response: { 200: NotificationModel.notification, ...problems(401, 404, 422) },
      detail: { summary: 'Mark one notification read', description: NOT_YOURS },
    })
    .delete(
      '/:id',
      ({ principal, params, set }) =>
        removeNotification(ctx, principal, params.id).then(() => noContent(set)),
      {
        auth: true,
        params: IdParams,
        response: { 204: NoContent, ...problems(401, 404, 422) },
        detail: { summary: 'Delete one notification', description: NOT_YOURS },
      },
    )
