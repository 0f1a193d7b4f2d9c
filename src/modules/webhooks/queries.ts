import type { Executor } from '../../db'
import type { Delivery, Webhook } from './model'

const webhookColumns = (db: Executor) => db`
  id, project_id, url, events, description, active, created_at, updated_at
`

export async function insertWebhook(
  db: Executor,
  hook: {
    project_id: string
    url: string
    events: string[]
    description: string | null
    active: boolean
    secret: string
    created_by: string
  },
) {
  const [row] = await db<Webhook[]>`
    insert into webhooks (project_id, url, events, description, active, secret, created_by)
    values (
      ${hook.project_id}, ${hook.url}, ${hook.events}::text[], ${hook.description},
      ${hook.active}, ${hook.secret}, ${hook.created_by}
    )
    returning ${webhookColumns(db)}
  `
  return row as Webhook
}

export async function listWebhooks(db: Executor, projectId: string) {
  return db<Webhook[]>`
    select ${webhookColumns(db)}
    from webhooks
    where project_id = ${projectId}
    order by created_at, id
  `
}

export async function selectWebhook(db: Executor, projectId: string, webhookId: string) {
  const [row] = await db<Webhook[]>`
    select ${webhookColumns(db)}
    from webhooks
    where project_id = ${projectId} and id = ${webhookId}
  `
  return row
}

export async function updateWebhook(
  db: Executor,
  projectId: string,
  webhookId: string,
  changes: { url?: string; events?: string[]; description?: string | null; active?: boolean },
) {
  const [row] = await db<Webhook[]>`
    update webhooks
    set
      url = coalesce(${changes.url ?? null}, url),
      events = coalesce(${changes.events ?? null}::text[], events),
      description = ${changes.description === undefined ? db`description` : changes.description},
      active = coalesce(${changes.active ?? null}::boolean, active),
      failures_in_a_row = case when ${changes.active === true} then 0 else failures_in_a_row end,
      updated_at = now()
    where project_id = ${projectId} and id = ${webhookId}
    returning ${webhookColumns(db)}
  `
  return row
}

export async function deleteWebhook(db: Executor, projectId: string, webhookId: string) {
  const rows = await db`delete from webhooks where project_id = ${projectId} and id = ${webhookId}`
  return rows.count === 1
}

export async function replaceSecret(
  db: Executor,
  projectId: string,
  webhookId: string,
  secret: string,
) {
  const rows = await db`
    update webhooks set secret = ${secret}, updated_at = now()
    where project_id = ${projectId} and id = ${webhookId}
  `
  return rows.count === 1
}

/**
 * The outbox: one delivery per active webhook of the project that wants this event, written in
 * the caller's transaction (so it exists if and only if the change commits). Its `webhook-id` is
 * the event id, as a string (the contract's "event id, stable across retries"); a ping's is
 * `ping_<uuid>`, which no event id can equal. Rows written before kept their `evt_<id>`: each
 * delivery stores its own, so a retry never changes it.
 */
export async function insertEventDeliveries(
  db: Executor,
  event: { id: number; project_id: string; event: string; payload: string },
) {
  await db`
    insert into webhook_deliveries (webhook_id, event_id, message_id, event, payload)
    select w.id, ${event.id}, ${String(event.id)}, ${event.event}, ${event.payload}
    from webhooks w
    where w.project_id = ${event.project_id}
      and w.active
      and (${event.event} = any(w.events) or '*' = any(w.events))
  `
}

export async function insertDelivery(
  db: Executor,
  delivery: {
    webhook_id: string
    event_id: number | null
    message_id: string
    event: string
    payload: string
  },
) {
  const [row] = await db<{ id: string }[]>`
    insert into webhook_deliveries (webhook_id, event_id, message_id, event, payload)
    values (
      ${delivery.webhook_id}, ${delivery.event_id}, ${delivery.message_id}, ${delivery.event},
      ${delivery.payload}
    )
    returning id
  `
  return row?.id as string
}

const deliveryColumns = (db: Executor) => db`
  d.id, d.event_id::text as event_id, d.message_id, d.event, d.status, d.attempts,
  d.response_status, d.duration_ms, d.error, d.next_attempt_at, d.created_at, d.delivered_at
`

export async function listDeliveries(db: Executor, webhookId: string, limit: number) {
  return db<Delivery[]>`
    select ${deliveryColumns(db)},
      coalesce((
        select json_agg(json_build_object(
          'response_status', a.response_status, 'duration_ms', a.duration_ms,
          'error', a.error, 'at', a.at
        ) order by a.id)
        from webhook_attempts a where a.delivery_id = d.id
      ), '[]'::json) as attempt_log
    from webhook_deliveries d
    where d.webhook_id = ${webhookId}
    order by d.created_at desc, d.id desc
    limit ${limit}
  `
}

export async function selectDelivery(db: Executor, webhookId: string, deliveryId: string) {
  const [row] = await db<
    { id: string; event_id: string | null; message_id: string; event: string; payload: string }[]
  >`
    select id, event_id::text as event_id, message_id, event, payload
    from webhook_deliveries
    where webhook_id = ${webhookId} and id = ${deliveryId}
  `
  return row
}

export type DueDelivery = {
  id: string
  webhook_id: string
  message_id: string
  payload: string
  attempts: number
  created_at: string
  url: string
  secret: string
}

/**
 * Claims up to `limit` due deliveries for this worker: `for update skip locked` so two workers
 * never take the same row, and a lease (`locked_until`) so a worker that dies frees them again.
 */
export async function claimDueDeliveries(db: Executor, limit: number, leaseSeconds: number) {
  return db<DueDelivery[]>`
    with due as (
      select d.id
      from webhook_deliveries d
      where d.status in ('pending', 'retrying')
        and d.next_attempt_at <= now()
        and (d.locked_until is null or d.locked_until < now())
      order by d.next_attempt_at
      limit ${limit}
      for update skip locked
    )
    update webhook_deliveries d
    set locked_until = now() + make_interval(secs => ${leaseSeconds}), attempts = d.attempts + 1
    from due, webhooks w
    where d.id = due.id and w.id = d.webhook_id
    returning d.id, d.webhook_id, d.message_id, d.payload, d.attempts, d.created_at, w.url, w.secret
  `
}

export type AttemptOutcome = {
  ok: boolean
  response_status: number | null
  duration_ms: number
  error: string | null
  excerpt: string | null
}

/** Records one attempt and the delivery's new state; a webhook failing 20 times in a row stops. */
export async function recordAttempt(
  db: Executor,
  delivery: DueDelivery,
  outcome: AttemptOutcome,
  next: { status: 'succeeded' | 'retrying' | 'failed'; delayMs: number },
) {
  await db`
    insert into webhook_attempts (delivery_id, response_status, duration_ms, error)
    values (${delivery.id}, ${outcome.response_status}, ${outcome.duration_ms}, ${outcome.error})
  `
  await db`
    update webhook_deliveries
    set status = ${next.status},
        response_status = ${outcome.response_status},
        duration_ms = ${outcome.duration_ms},
        error = ${outcome.error},
        response_excerpt = ${outcome.excerpt},
        locked_until = null,
        next_attempt_at = now() + make_interval(secs => ${next.delayMs / 1000}),
        delivered_at = ${outcome.ok ? db`now()` : null}
    where id = ${delivery.id}
  `
  const [hook] = await db<{ failures_in_a_row: number; active: boolean }[]>`
    update webhooks
    set failures_in_a_row = ${outcome.ok ? db`0` : db`failures_in_a_row + 1`}
    where id = ${delivery.webhook_id}
    returning failures_in_a_row, active
  `
  return hook
}

/** Deactivates the webhook if it is still active; returns it with its project's owner then. */
export async function deactivateWebhook(db: Executor, webhookId: string) {
  const [row] = await db<{ id: string; url: string; project_id: string; owner_id: string }[]>`
    update webhooks w
    set active = false, updated_at = now()
    from projects p
    where w.id = ${webhookId} and w.active and p.id = w.project_id
    returning w.id, w.url, w.project_id, p.owner_id
  `
  return row
}
