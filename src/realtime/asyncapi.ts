import { type TSchema, t } from 'elysia'
import pkg from '../../package.json'
import { CommentModel } from '../modules/comments/model'
import { NotificationModel } from '../modules/notifications/model'
import { MemberModel } from '../modules/projects/members/model'
import { ProjectModel } from '../modules/projects/model'
import { TaskModel } from '../modules/tasks/model'
import { EVENT_NAMES, type EventName } from './events'

// TypeBox schemas are JSON Schema; the round trip drops TypeBox's own symbol keys.
const plain = (schema: TSchema) => JSON.parse(JSON.stringify(schema)) as Record<string, unknown>
const ref = (path: string) => ({ $ref: path })
const Uuid = { type: 'string', format: 'uuid' }
const Changes = {
  type: 'object',
  description: 'Each changed field as `{old, new}`',
  additionalProperties: {
    type: 'object',
    properties: { old: {}, new: {} },
    required: ['old', 'new'],
  },
}
const Actor = { ...Uuid, description: 'Who made the change' }

const object = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({
  type: 'object',
  properties,
  required,
})

/** The `data` of each event. */
const EVENT_DATA: Record<EventName, Record<string, unknown>> = {
  'task.created': object({ task: ref('#/components/schemas/Task'), actor_id: Actor }),
  'task.updated': object({
    task: ref('#/components/schemas/Task'),
    changes: Changes,
    actor_id: Actor,
  }),
  'task.assigned': object({
    task: ref('#/components/schemas/Task'),
    changes: { ...Changes, description: '`assignee_id` as `{old, new}`' },
    actor_id: Actor,
  }),
  'task.status_changed': object({
    task: ref('#/components/schemas/Task'),
    changes: { ...Changes, description: '`status` (and `completed_at`) as `{old, new}`' },
    actor_id: Actor,
  }),
  'task.deleted': object({ task_id: Uuid, title: { type: 'string' }, actor_id: Actor }),
  'comment.created': object({
    comment: ref('#/components/schemas/Comment'),
    task_id: Uuid,
    actor_id: Actor,
  }),
  'member.added': object({ member: ref('#/components/schemas/ProjectMember'), actor_id: Actor }),
  'member.removed': object({
    user_id: { ...Uuid, description: 'The member who left or was removed' },
    role: { type: 'string', description: 'The role they had' },
    left: { type: 'boolean', description: 'True when they removed themselves' },
    unassigned_tasks: { type: 'integer', description: 'Their tasks here that lost the assignee' },
    actor_id: Actor,
  }),
  'project.updated': object({
    project: ref('#/components/schemas/ProjectFields'),
    changes: Changes,
    actor_id: Actor,
  }),
}

const messageName = (event: EventName) =>
  event.replace(/[._](\w)/g, (_, c: string) => c.toUpperCase())

function eventMessage(event: EventName) {
  return {
    name: event,
    title: `Event ${event}`,
    summary: `A committed \`${event}\` of a subscribed project`,
    contentType: 'application/json',
    payload: object({
      type: { const: 'event' },
      topic: { type: 'string', pattern: '^project:[0-9a-f-]{36}$' },
      id: {
        type: 'integer',
        description:
          'Grows in commit order within the topic; send the last one seen as `since` when subscribing again',
      },
      event: { const: event },
      data: EVENT_DATA[event],
      at: { type: 'string', format: 'date-time' },
    }),
  }
}

const clientMessages = {
  subscribe: {
    name: 'subscribe',
    title: 'Subscribe to a project',
    summary:
      'Members only (else `error` `forbidden`). With `since`, first replays the kept events after that id (or `error` `replay_gap` when they are no longer kept), then live ones, with no gap and no duplicate. Subscribes and unsubscribes of one topic are handled in the order sent: a repeated subscribe is answered after the one before it, `subscribed` again if that one was accepted (without a second replay), else checked anew.',
    contentType: 'application/json',
    payload: object(
      {
        type: { const: 'subscribe' },
        topic: { type: 'string', pattern: '^project:[0-9a-fA-F-]{36}$' },
        since: { type: 'integer', minimum: 0, description: 'The last event id the client has' },
      },
      ['type', 'topic'],
    ),
  },
  unsubscribe: {
    name: 'unsubscribe',
    title: 'Leave a project topic',
    contentType: 'application/json',
    payload: object({
      type: { const: 'unsubscribe' },
      topic: { type: 'string', pattern: '^project:[0-9a-fA-F-]{36}$' },
    }),
  },
  ping: {
    name: 'ping',
    title: 'Application-level ping; answered by `pong`',
    contentType: 'application/json',
    payload: object({ type: { const: 'ping' } }),
  },
}

const serverMessages = {
  welcome: {
    name: 'welcome',
    title: 'Sent once the socket is open and subscribed to `user:<id>`',
    contentType: 'application/json',
    payload: object({ type: { const: 'welcome' }, user_id: Uuid }),
  },
  subscribed: {
    name: 'subscribed',
    title: 'The subscription is accepted; replayed events (if any) follow',
    contentType: 'application/json',
    payload: object({ type: { const: 'subscribed' }, topic: { type: 'string' } }),
  },
  notification: {
    name: 'notification',
    title: 'A notification for the caller, as it is stored',
    contentType: 'application/json',
    payload: object({
      type: { const: 'notification' },
      data: ref('#/components/schemas/Notification'),
    }),
  },
  pong: {
    name: 'pong',
    title: 'Answer to `ping`',
    contentType: 'application/json',
    payload: object({ type: { const: 'pong' } }),
  },
  error: {
    name: 'error',
    title: 'A refused message; the socket stays open',
    summary:
      '`invalid_message` (not JSON, or not one of the client messages), `forbidden` (not a member, or removed from the project: the subscription is dropped), `not_found` (no such project), `replay_gap` (`since` is older than the events kept: refetch, the subscription goes on live), `subscription_limit`, `rate_limited` (over 20 messages a second: the rest of that second is dropped; over 100 closes the socket with 1008), `internal`.',
    contentType: 'application/json',
    payload: object({
      type: { const: 'error' },
      code: {
        type: 'string',
        enum: [
          'invalid_message',
          'forbidden',
          'not_found',
          'replay_gap',
          'subscription_limit',
          'rate_limited',
          'internal',
        ],
      },
      message: { type: 'string' },
    }),
  },
}

const eventMessages = Object.fromEntries(EVENT_NAMES.map((e) => [messageName(e), eventMessage(e)]))
const channelMessages = Object.fromEntries(
  [
    ...Object.keys(clientMessages),
    ...Object.keys(serverMessages),
    ...Object.keys(eventMessages),
  ].map((name) => [name, ref(`#/components/messages/${name}`)]),
)
const messagesOf = (names: string[]) => names.map((n) => ref(`#/channels/socket/messages/${n}`))

/** The WebSocket protocol of /ws as an AsyncAPI 3 document, served at /docs/asyncapi.json. */
export const asyncApiDocument = {
  asyncapi: '3.1.0',
  info: {
    title: 'taskapi real time',
    version: pkg.version,
    description: `The WebSocket of taskapi: every committed change of the projects a client follows, live on every instance, and replay across reconnects.

* Connect to \`/ws\` with \`Authorization: Bearer <access token>\`, or \`?access_token=\` from browsers. A bad, expired or revoked token is refused with HTTP 401 before the upgrade; more than WS_MAX_SOCKETS_PER_USER sockets of one user on an instance answer 429, and so do refused upgrades past the address's API rate limit.
* Frames are JSON text. The socket answers \`welcome\` and is subscribed to \`user:<id>\` (notifications) when opened with a session, or with an API token that has \`notifications:read\` (a token limited to projects gets only the notifications about them).
* Event ids grow in commit order within a project topic. Events are kept at least EVENTS_RETENTION_HOURS (24) and at least the last EVENTS_RETENTION_PER_PROJECT (10,000) per project. The same feed is \`GET /api/v1/events?project_id=&since=\` (410 \`replay_gap\` there).
* Close codes: 4401 when the token expires (\`token_expired\`) or the session ends (\`session_ended\`: logout, logout-all, password change, deactivation); reconnect with a fresh token and \`since\`. 1001 on server shutdown, 1009 for a message over WS_MAX_PAYLOAD_BYTES, 1013 when the server cannot buffer for a slow client, 1012 \`resync\` when the client should reconnect with \`since\`. A client that reads too slowly (over WS_BACKPRESSURE_LIMIT_BYTES queued) is disconnected.`,
  },
  defaultContentType: 'application/json',
  servers: {
    local: {
      host: 'localhost:8080',
      protocol: 'ws',
      pathname: '/ws',
      description: 'The server itself (use wss behind TLS)',
      security: [
        ref('#/components/securitySchemes/bearer'),
        ref('#/components/securitySchemes/accessTokenQuery'),
      ],
    },
  },
  channels: {
    socket: {
      address: '/ws',
      title: 'The WebSocket',
      description:
        'One socket carries the caller’s `user:<id>` topic and the `project:<id>` topics it subscribes to.',
      messages: channelMessages,
      bindings: {
        ws: {
          method: 'GET',
          query: object(
            { access_token: { type: 'string', description: 'The access token, for browsers' } },
            [],
          ),
        },
      },
    },
  },
  operations: {
    subscribe: {
      action: 'send',
      title: 'Subscribe to a project',
      channel: ref('#/channels/socket'),
      messages: messagesOf(['subscribe']),
    },
    unsubscribe: {
      action: 'send',
      title: 'Unsubscribe from a project',
      channel: ref('#/channels/socket'),
      messages: messagesOf(['unsubscribe']),
    },
    ping: {
      action: 'send',
      title: 'Ping',
      channel: ref('#/channels/socket'),
      messages: messagesOf(['ping']),
    },
    receiveControl: {
      action: 'receive',
      title: 'Welcome, subscription answers, pongs and errors',
      channel: ref('#/channels/socket'),
      messages: messagesOf(Object.keys(serverMessages).filter((n) => n !== 'notification')),
    },
    receiveNotification: {
      action: 'receive',
      title: 'The caller’s notifications, live',
      channel: ref('#/channels/socket'),
      messages: messagesOf(['notification']),
    },
    receiveEvent: {
      action: 'receive',
      title: 'Events of subscribed projects',
      channel: ref('#/channels/socket'),
      messages: messagesOf(Object.keys(eventMessages)),
    },
  },
  components: {
    schemas: {
      Task: plain(TaskModel.task),
      Comment: plain(CommentModel.comment),
      ProjectMember: plain(MemberModel.member),
      ProjectFields: plain(
        t.Omit(ProjectModel.project, ['member_role', 'task_counts', 'created_at', 'updated_at']),
      ),
      Notification: plain(NotificationModel.notification),
    },
    messages: { ...clientMessages, ...serverMessages, ...eventMessages },
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      accessTokenQuery: { type: 'httpApiKey', name: 'access_token', in: 'query' },
    },
  },
}
