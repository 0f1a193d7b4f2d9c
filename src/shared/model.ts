import { t } from 'elysia'

export const Uuid = t.String({ format: 'uuid', description: 'UUID (v7, time-ordered)' })
export const Timestamp = t.String({ format: 'date-time', description: 'RFC 3339 timestamp in UTC' })

export const Username = t.String({
  minLength: 3,
  maxLength: 50,
  pattern: '^[A-Za-z0-9_.-]+$',
  description: '3 to 50 of A-Z, a-z, 0-9, _ . -; unique regardless of case',
})
export const Email = t.String({
  format: 'email',
  maxLength: 255,
  description: 'Unique regardless of case',
})
export const Password = t.String({
  minLength: 8,
  maxLength: 128,
  description: '8 to 128 characters',
})
export const PersonName = t.String({ minLength: 1, maxLength: 100 })

export const PageQuery = {
  page: t.Optional(
    t.Integer({ minimum: 1, maximum: 1_000_000, default: 1, description: 'From 1' }),
  ),
  limit: t.Optional(
    t.Integer({ minimum: 1, maximum: 100, default: 20, description: 'At most 100; more is a 422' }),
  ),
}

export const Pagination = t.Object(
  {
    page: t.Integer({ description: 'From 1' }),
    limit: t.Integer({ description: 'Page size' }),
    total: t.Integer({ description: 'Rows matching the filters' }),
    pages: t.Integer({ description: 'Pages of `limit` rows' }),
  },
  { title: 'Pagination' },
)

export function pagination(page: number, limit: number, total: number) {
  return { page, limit, total, pages: Math.ceil(total / limit) }
}

export const IdParams = t.Object({ id: Uuid })

/** One page of a list and its total, read at once: `rows(limit, offset)` beside `count()`. */
export async function paged<T>(
  { page = 1, limit = 20 }: { page?: number; limit?: number },
  rows: (limit: number, offset: number) => Promise<T[]>,
  count: () => Promise<number>,
) {
  const [data, total] = await Promise.all([rows(limit, (page - 1) * limit), count()])
  return { data, pagination: pagination(page, limit, total) }
}
