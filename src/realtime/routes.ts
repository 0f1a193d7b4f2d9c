import { Elysia, t } from 'elysia'
import type { AppContext } from '../context'
import type { AuthGuard } from '../modules/auth/guard'
import { Problem } from '../problems'
import { problems } from '../shared/docs'
import { asyncApiDocument } from './asyncapi'
import { EventPage, EventsQuery } from './model'
import { listEvents } from './service'

/** GET /api/v1/events: the same feed as the WebSocket, for clients that cannot hold one. */
export const eventRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ prefix: '/events', detail: { tags: ['Events'] } })
    .use(guard)
    .get('', ({ principal, query }) => listEvents(ctx, principal, query), {
      auth: true,
      query: EventsQuery,
      response: {
        200: EventPage,
        ...problems(401, 403, 404, 422),
        410: t.Composite([Problem], {
          description: '`since` is older than the events still kept (`code: "replay_gap"`)',
        }),
      },
      detail: {
        summary: 'A project’s events after `since`, oldest first (members only)',
        description:
          'The events of the WebSocket topic `project:<id>`, with the same ids, so a client can move between the two without a gap. Send `next_since` back as `since` for the next page. Events are kept at least EVENTS_RETENTION_HOURS (24) and at least the last EVENTS_RETENTION_PER_PROJECT (10,000) per project; a `since` older than that answers 410 with `code: "replay_gap"`: refetch, then continue from the `next_since` of a call without `since`.',
      },
    })

/** The AsyncAPI 3 description of /ws, which OpenAPI cannot express. */
export const asyncApiRoutes = () =>
  new Elysia().get('/docs/asyncapi.json', () => asyncApiDocument, {
    detail: { hide: true },
  })
