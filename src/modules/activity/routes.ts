import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { ActivityList, ActivityModel } from './model'
import { projectActivity, taskActivity } from './service'

const PAGING =
  'Newest first. Page with `page`/`limit` (with totals), or send `pagination.next_cursor` back as `cursor` for a keyset walk that stays stable while entries are added (`total` and `pages` are then null).'

export const activityRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ name: 'activity-routes', detail: { tags: ['Activity'] } })
    .use(guard)
    .get(
      '/projects/:id/activity',
      ({ principal, params, query }) => projectActivity(ctx, principal, params.id, query),
      {
        auth: true,
        params: IdParams,
        query: ActivityModel.listQuery,
        response: { 200: ActivityList, ...problems(401, 403, 404, 422) },
        detail: {
          summary:
            'A project’s activity: its changes and those of its members, tasks, comments and attachments (members only)',
          description: PAGING,
        },
      },
    )
    .get(
      '/tasks/:id/activity',
      ({ principal, params, query }) => taskActivity(ctx, principal, params.id, query),
      {
        auth: true,
        params: IdParams,
        query: ActivityModel.listQuery,
        response: { 200: ActivityList, ...problems(401, 403, 404, 422) },
        detail: {
          summary:
            'A task’s activity: entries about the task and those naming it in `details.task_id` (members only)',
          description: PAGING,
        },
      },
    )
