import type { AppContext, Principal } from '../../context'
import type { Executor } from '../../db'
import { invalid } from '../../problems'
import { authorizeProject, authorizeTask } from '../authz/service'
import type { ActivityListQuery } from './model'
import { type ActivityPosition, type ActivityScope, countActivity, listActivity } from './queries'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The opaque cursor is base64url JSON `[microseconds, id]` of the last entry of a page. */
export function encodeCursor(position: ActivityPosition) {
  return Buffer.from(JSON.stringify([position.us, position.id])).toString('base64url')
}

export function decodeCursor(cursor: string): ActivityPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(value) && value.length === 2) {
      const [us, id] = value
      if (
        typeof us === 'string' &&
        /^\d{1,17}$/.test(us) &&
        typeof id === 'string' &&
        UUID.test(id)
      )
        return { us, id }
    }
  } catch {}
  throw invalid([{ path: '/cursor', message: 'is not a cursor this API handed out' }])
}

/**
 * One page of a feed, newest first: by `page` with totals, or by `cursor` (keyset, stable while
 * entries are added; totals null). Every page names the next cursor, null on the last.
 */
export async function readFeed(db: Executor, scope: ActivityScope, query: ActivityListQuery) {
  const page = query.page ?? 1
  const limit = query.limit ?? 20
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
  const [rows, total] = await Promise.all([
    listActivity(db, scope, { limit: limit + 1, offset: (page - 1) * limit, after }),
    after ? null : countActivity(db, scope),
  ])
  const more = rows.length > limit
  const data = rows.slice(0, limit).map(({ position_us, ...entry }) => entry)
  const last = rows[limit - 1]
  return {
    data,
    pagination: {
      page: after ? 1 : page,
      limit,
      total,
      pages: total === null ? null : Math.ceil(total / limit),
      next_cursor: more && last ? encodeCursor({ us: last.position_us, id: last.id }) : null,
    },
  }
}

export async function projectActivity(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  query: ActivityListQuery,
) {
  await authorizeProject(ctx.sql, principal, projectId, 'project.read')
  return readFeed(ctx.sql, { projectId }, query)
}

export async function taskActivity(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  query: ActivityListQuery,
) {
  await authorizeTask(ctx.sql, principal, taskId, 'task.read')
  return readFeed(ctx.sql, { taskId }, query)
}
