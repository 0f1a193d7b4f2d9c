import { Elysia, t } from 'elysia'
import pkg from '../../../package.json'
import type { Database } from '../../db'

const Health = t.Object(
  {
    status: t.Union([t.Literal('healthy'), t.Literal('unhealthy')]),
    timestamp: t.String({ format: 'date-time' }),
    version: t.String(),
    services: t.Object({ database: t.Union([t.Literal('healthy'), t.Literal('unhealthy')]) }),
  },
  { title: 'Health', description: 'Liveness and database reachability' },
)

export const healthRoutes = (db: Pick<Database, 'ping'>) =>
  new Elysia({ detail: { tags: ['Operations'] } }).get(
    '/health',
    async ({ set }) => {
      const up = await db.ping()
      if (!up) set.status = 503
      const status = up ? 'healthy' : 'unhealthy'
      return {
        status,
        timestamp: new Date().toISOString(),
        version: pkg.version,
        services: { database: status },
      } as const
    },
    {
      response: { 200: Health, 503: Health },
      detail: { summary: 'Liveness and database reachability; 503 when the database is down' },
    },
  )
