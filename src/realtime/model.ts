import { Type } from '@sinclair/typebox'
import { t } from 'elysia'
import { Timestamp, Uuid } from '../shared/model'

const UUID_PATTERN = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'
export const PROJECT_TOPIC = new RegExp(`^project:(${UUID_PATTERN})$`)

// TypeBox's own Integer: Elysia's t.Integer also passes numeric strings ('0x10', '-1', '1e3'),
// meant for query strings; a frame's `since` must be a JSON number.
const EventId = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
const Topic = t.String({ pattern: PROJECT_TOPIC.source, description: '`project:<id>`' })

/** What a client may send on /ws; anything else gets an `error` frame. */
export const ClientMessage = t.Union([
  t.Object({ type: t.Literal('subscribe'), topic: Topic, since: t.Optional(EventId) }),
  t.Object({ type: t.Literal('unsubscribe'), topic: Topic }),
  t.Object({ type: t.Literal('ping') }),
])
export type ClientMessage = typeof ClientMessage.static

export const EventsQuery = t.Object({
  project_id: Uuid,
  since: t.Optional(
    t.Integer({
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'Events after this id; absent: from the oldest kept',
    }),
  ),
  limit: t.Optional(
    t.Integer({ minimum: 1, maximum: 1_000, default: 100, description: '1 to 1000, default 100' }),
  ),
})

export const EventEnvelope = t.Object(
  {
    id: t.Integer({ description: 'Grows in commit order within the project' }),
    topic: t.String({ description: '`project:<id>`' }),
    event: t.String({ description: '`task.created`, `member.removed` ...' }),
    data: t.Record(t.String(), t.Unknown()),
    at: Timestamp,
  },
  { title: 'Event' },
)

export const EventPage = t.Object(
  {
    data: t.Array(EventEnvelope),
    next_since: t.Integer({ description: 'Send back as `since` for the next page' }),
  },
  { title: 'EventPage' },
)
