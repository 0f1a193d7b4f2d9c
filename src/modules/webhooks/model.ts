import { t } from 'elysia'
import { Timestamp, Uuid } from '../../shared/model'

const EventName = t.String({
  minLength: 1,
  maxLength: 50,
  description: 'An event name of the WebSocket section (`task.created`, ...) or `*` for every one',
})

const webhookFields = {
  id: Uuid,
  project_id: Uuid,
  url: t.String(),
  events: t.Array(t.String()),
  description: t.Nullable(t.String()),
  active: t.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
}

const Url = t.String({
  minLength: 1,
  maxLength: 2048,
  description:
    '`https` or `http`; must resolve to public addresses (unless WEBHOOK_ALLOW_PRIVATE=true)',
})

const Secret = t.String({
  description: '`whsec_` + base64 of 32 random bytes; shown only here',
})

export const WebhookModel = {
  webhook: t.Object(webhookFields, { title: 'Webhook' }),
  created: t.Object({ ...webhookFields, secret: Secret }, { title: 'NewWebhook' }),
  secret: t.Object({ secret: Secret }, { title: 'WebhookSecret' }),
  create: t.Object({
    url: Url,
    events: t.Array(EventName, { minItems: 1, maxItems: 20, uniqueItems: true }),
    description: t.Optional(t.Nullable(t.String({ maxLength: 500 }))),
    active: t.Optional(t.Boolean()),
  }),
  update: t.Object({
    url: t.Optional(Url),
    events: t.Optional(t.Array(EventName, { minItems: 1, maxItems: 20, uniqueItems: true })),
    description: t.Optional(t.Nullable(t.String({ maxLength: 500 }))),
    active: t.Optional(t.Boolean()),
  }),
  delivery: t.Object(
    {
      id: Uuid,
      event_id: t.Nullable(t.String({ description: 'The event id; null for a ping' })),
      message_id: t.String({
        description:
          'The `webhook-id` header of every attempt: the event id (as in `event_id`), or `ping_<uuid>` for a ping; redeliveries keep it',
      }),
      event: t.String(),
      status: t.Union([
        t.Literal('pending'),
        t.Literal('retrying'),
        t.Literal('succeeded'),
        t.Literal('failed'),
      ]),
      attempts: t.Integer(),
      response_status: t.Nullable(t.Integer()),
      duration_ms: t.Nullable(t.Integer()),
      error: t.Nullable(t.String()),
      next_attempt_at: Timestamp,
      created_at: Timestamp,
      delivered_at: t.Nullable(Timestamp),
      attempt_log: t.Array(
        t.Object(
          {
            response_status: t.Nullable(t.Integer()),
            duration_ms: t.Integer(),
            error: t.Nullable(t.String()),
            at: t.String(),
          },
          { title: 'WebhookAttempt' },
        ),
      ),
    },
    { title: 'WebhookDelivery' },
  ),
  accepted: t.Object({ delivery_id: Uuid }, { title: 'DeliveryAccepted' }),
  deliveriesQuery: t.Object({
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, default: 50 })),
  }),
}

export type Webhook = typeof WebhookModel.webhook.static
export type Delivery = typeof WebhookModel.delivery.static
export type WebhookCreate = typeof WebhookModel.create.static
export type WebhookUpdate = typeof WebhookModel.update.static
