import type { Executor } from '../db'

/** The one NOTIFY channel of the process: events, notifications and session revocations. */
export const CHANNEL = 'taskapi_realtime'

// The first key of every per-project event lock (pg_advisory_xact_lock(int, int)); the second
// is a hash of the project id. A collision only makes two projects wait for each other.
const EVENT_LOCK_SPACE = 0x74617069

export type EventRow = { id: number; project_id: string; event: string; data: unknown; at: string }
type RawEventRow = Omit<EventRow, 'id'> & { id: string }

const toEvent = (row: RawEventRow): EventRow => ({ ...row, id: Number(row.id) })

// NOTIFY refuses payloads of 8000 bytes or more; larger ones travel as a reference, read back.
export const MAX_NOTIFY_BYTES = 7_900

/**
 * The common table expressions that record an event (see insertAnnouncedEvent), as SQL text to
 * write after a CTE named `input` (`project_id` uuid, `event` text, `data` JSON text). They define
 * `e` (the event: `id`, `at`, `at_text`), `signal` (`text`) and `announced`. Text built once, not
 * a postgres.js fragment: a fragment's text is built again on every call (bench/inprocess.ts).
 */
export function announcedEventSql(announce: 'now' | 'after commit') {
  const lock =
    announce === 'now'
      ? `pg_advisory_xact_lock(${EVENT_LOCK_SPACE}, hashtext(input.project_id::text))`
      : `pg_advisory_lock(${EVENT_LOCK_SPACE}, hashtext(input.project_id::text))`
  return `
    lock as (
      select ${lock}
      from input
    ),
    e as (
      insert into events (project_id, event, data)
      select input.project_id, input.event, input.data::jsonb
      from input, lock
      returning id, at, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at_text
    ),
    delivery as (
      insert into webhook_deliveries (webhook_id, event_id, message_id, event, payload)
      select w.id, e.id, e.id::text, input.event,
        '{"id":' || to_json(e.id::text)::text
          || ',"event":' || to_json(input.event)::text
          || ',"project_id":' || to_json(input.project_id::text)::text
          || ',"data":' || input.data
          || ',"at":' || to_json(e.at_text)::text || '}'
      from input, e, webhooks w
      where w.project_id = input.project_id
        and w.active
        and (input.event = any(w.events) or '*' = any(w.events))
    ),
    parts as (
      select '{"k":"e","id":' || e.id || ',"p":' || to_json(input.project_id::text)::text
          as reference,
        ',"e":' || to_json(input.event)::text || ',"d":' || input.data
          || ',"at":' || to_json(e.at_text)::text as rest
      from input, e
    ),
    signal as (
      select case
        when octet_length(reference) + octet_length(rest) + 1 <= ${MAX_NOTIFY_BYTES}
          then reference || rest || '}'
        else reference || '}'
      end as text
      from parts
    ),
    announced as (
      select ${announce === 'now' ? `pg_notify('${CHANNEL}', signal.text)` : 'null'}
      from signal
    )`
}

const INSERT_ANNOUNCED_EVENT = {
  now: insertAnnouncedEventSql('now'),
  'after commit': insertAnnouncedEventSql('after commit'),
}

function insertAnnouncedEventSql(announce: 'now' | 'after commit') {
  return `
    with input as (
      select $1::uuid as project_id, $2::text as event, $3::text as data
    ),
    ${announcedEventSql(announce)}
    select e.id, e.at, signal.text as signal
    from e, signal, announced
  `
}

/**
 * Records a project event in one statement, inside the caller's transaction:
 * 1. takes the project's event lock, so that the project's event ids commit (and are announced)
 *    in the order they are handed out; the event's row is built from the lock's row, so its id
 *    is drawn only once the lock is held. `announce: 'now'`: pg_advisory_xact_lock, held until
 *    the transaction ends; `'after commit'`: pg_advisory_lock (the session's), which the caller
 *    releases with `announceEvent` once the transaction has ended;
 * 2. inserts the event;
 * 3. queues its webhook deliveries (the outbox: one row per active webhook of the project that
 *    wants the event), payload `{"id","event","project_id","data","at"}`;
 * 4. with `'now'`, queues its NOTIFY (delivered to listeners if and only if the transaction
 *    commits); with `'after commit'` answers it as `signal` for `announceEvent`:
 *    `{"k":"e","id","p","e","d","at"}`, or `{"k":"e","id","p"}` when that would not fit.
 * `dataJson` is the event's data as JSON text; the payloads are built by concatenation so that
 * they carry exactly that text, and `at` as JavaScript's toISOString writes it (both truncate to
 * milliseconds).
 */
export async function insertAnnouncedEvent(
  db: Executor,
  event: { project_id: string; event: string; dataJson: string },
  announce: 'now' | 'after commit' = 'now',
) {
  const [row] = await db.unsafe<{ id: string; at: string; signal: string }[]>(
    INSERT_ANNOUNCED_EVENT[announce],
    [event.project_id, event.event, event.dataJson],
    { prepare: true },
  )
  if (!row) throw new Error('event insert returned nothing')
  return { id: Number(row.id), at: row.at, signal: row.signal }
}

/**
 * After a transaction that recorded an event with `'after commit'`, on its connection and sent
 * right behind its COMMIT or ROLLBACK: the NOTIFY, only if the event is there (so a failed commit
 * announces nothing), then the release of the project's event lock. Two statements, in this
 * order: the NOTIFY commits before the lock lets the project's next event commit.
 */
export function announceEvent(
  db: Executor,
  event: { project_id: string; id?: number; signal?: string },
) {
  const announced =
    event.id === undefined || event.signal === undefined
      ? undefined
      : db`
          select pg_notify(${CHANNEL}, ${event.signal})
          from events
          where id = ${event.id}
        `
  const released = db`
    select pg_advisory_unlock(${EVENT_LOCK_SPACE}, hashtext(${event.project_id}::uuid::text))
  `
  return Promise.all([announced, released])
}

/** After the commit: one NOTIFY per notification that the commit made visible, in list order. */
export function announceStoredNotifications(
  db: Executor,
  notifications: readonly { id: string; signal: string }[],
) {
  return db`
    select pg_notify(${CHANNEL}, s.signal)
    from unnest(${notifications.map((n) => n.id)}::uuid[], ${notifications.map((n) => n.signal)}::text[])
      with ordinality as s(id, signal, n)
    where exists (select 1 from notifications where notifications.id = s.id)
    order by s.n
  `
}

/**
 * NOTIFY once the project's events committed so far have been announced: it waits for the
 * project's event lock, which a writer announcing after its commit holds until its NOTIFY is sent.
 */
export async function notifyAfterProjectEvents(db: Executor, projectId: string, payload: string) {
  await db`
    select pg_notify(${CHANNEL}, ${payload})
    from (
      select pg_advisory_xact_lock(${EVENT_LOCK_SPACE}, hashtext(${projectId}::uuid::text))
    ) as lock
  `
}

/** Queues a notification that PostgreSQL delivers to every listener when (and if) this commits. */
export async function notify(db: Executor, payload: string) {
  await db`select pg_notify(${CHANNEL}, ${payload})`
}

export async function selectEvent(db: Executor, id: number) {
  const [row] = await db<RawEventRow[]>`
    select id, project_id, event, data, at
    from events
    where id = ${id}
  `
  return row ? toEvent(row) : undefined
}

/** A project's events after `since`, oldest first. */
export async function selectEventsAfter(
  db: Executor,
  projectId: string,
  since: number,
  limit: number,
) {
  const rows = await db<RawEventRow[]>`
    select id, project_id, event, data, at
    from events
    where project_id = ${projectId}
      and id > ${since}
    order by id
    limit ${limit}
  `
  return rows.map(toEvent)
}

/** Every project's events stored since `from` (database time), in id order, after `afterId`. */
export async function selectEventsSince(
  db: Executor,
  from: string,
  afterId: number,
  limit: number,
) {
  const rows = await db<RawEventRow[]>`
    select id, project_id, event, data, at
    from events
    where at >= ${from}
      and id > ${afterId}
    order by id
    limit ${limit}
  `
  return rows.map(toEvent)
}

/** The highest pruned event id of the project (0 when nothing was pruned). */
export async function selectPrunedThrough(db: Executor, projectId: string) {
  const [row] = await db<{ pruned_through: string }[]>`
    select pruned_through
    from event_horizons
    where project_id = ${projectId}
  `
  return row ? Number(row.pruned_through) : 0
}

/** The database's clock, against which event times are compared. */
export async function selectDatabaseNow(db: Executor) {
  const [row] = await db<{ now: string }[]>`select clock_timestamp() as now`
  return (row as { now: string }).now
}

/**
 * Deletes events older than `hours` that are not among the last `keep` of their project, and
 * remembers per project the highest id deleted; returns how many went.
 */
export async function pruneEvents(db: Executor, hours: number, keep: number) {
  const [row] = await db<{ count: string }[]>`
    with old as (
      select distinct project_id
      from events
      where at < now() - make_interval(hours => ${hours})
    ), bounds as (
      select o.project_id, (
        select k.id
        from events k
        where k.project_id = o.project_id
        order by k.id desc
        offset ${Math.max(keep - 1, 0)}
        limit 1
      ) as keep_from
      from old o
    ), deleted as (
      delete from events e
      using bounds b
      where e.project_id = b.project_id
        and e.at < now() - make_interval(hours => ${hours})
        and b.keep_from is not null
        and e.id < b.keep_from + ${keep === 0 ? 1 : 0}
      returning e.project_id, e.id
    ), horizons as (
      insert into event_horizons (project_id, pruned_through)
      select project_id, max(id)
      from deleted
      group by project_id
      on conflict (project_id) do update
        set pruned_through = greatest(event_horizons.pruned_through, excluded.pruned_through)
    )
    select count(*) as count from deleted
  `
  return Number(row?.count ?? 0)
}

/** A stored notification, read back when its NOTIFY payload was too large to carry it. */
export async function selectNotification(db: Executor, id: string) {
  const [row] = await db<Record<string, unknown>[]>`
    select id, user_id, title, message, type, entity_type, entity_id, is_read, created_at
    from notifications
    where id = ${id}
  `
  return row
}
