import { t } from 'elysia'
import { invalid } from '../problems'

/**
 * Keyset pagination: a cursor is the (sort timestamp, id) of the last row of a page, with the
 * timestamp at full microsecond precision (the JSON timestamps stop at milliseconds, which would
 * skip or repeat rows created within the same millisecond).
 */
export type Keyset = { at: string; id: string }

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export const CursorQuery = t.Optional(
  t.String({
    minLength: 1,
    maxLength: 200,
    description: '`pagination.next_cursor` of the previous page; `page` is then ignored',
  }),
)

export const CursorPagination = t.Object({
  page: t.Integer(),
  limit: t.Integer(),
  total: t.Nullable(t.Integer({ description: 'null when paging by cursor' })),
  pages: t.Nullable(t.Integer({ description: 'null when paging by cursor' })),
  next_cursor: t.Nullable(
    t.String({ description: 'Send back as `cursor`; null on the last page' }),
  ),
})

export const encodeCursor = (key: Keyset) =>
  Buffer.from(JSON.stringify([key.at, key.id])).toString('base64url')

// A well-shaped but impossible date (month 13) would otherwise reach PostgreSQL as an error.
// A real date and time, in a year PostgreSQL has (JavaScript has a year 0, PostgreSQL does not).
const isRealInstant = (at: string) => {
  const time = Date.parse(at)
  return (
    at >= '0001' &&
    !Number.isNaN(time) &&
    new Date(time).toISOString().slice(0, 19) === at.slice(0, 19)
  )
}

/** Reads a cursor sent by a client; anything not made by encodeCursor is a 422 on /cursor. */
export function decodeCursor(raw: string): Keyset {
  try {
    const value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      TIMESTAMP.test(value[0]) &&
      UUID.test(value[1]) &&
      isRealInstant(value[0])
    )
      return { at: value[0], id: value[1] }
  } catch {}
  throw invalid([{ path: '/cursor', message: 'is not a cursor this server issued' }])
}

/**
 * One page out of `limit + 1` fetched rows: the rows to return (without their sort key) and the
 * cursor of the next page, or null when there is none.
 */
export function pageOf<R extends { sort_at: string; id: string }>(rows: R[], limit: number) {
  const more = rows.length > limit
  const kept = more ? rows.slice(0, limit) : rows
  const last = kept.at(-1)
  const next = more && last ? encodeCursor({ at: last.sort_at, id: last.id }) : null
  const data = kept.map(({ sort_at: _, ...row }) => row)
  return { data, next }
}

export function cursorPagination(
  page: number,
  limit: number,
  total: number | null,
  next: string | null,
) {
  return {
    page,
    limit,
    total,
    pages: total === null ? null : Math.ceil(total / limit),
    next_cursor: next,
  }
}
