import type postgres from 'postgres'
import type { Executor } from '../db'

/** The one NOTIFY channel of the process: events, notifications and session revocations. */
export const CHANNEL = 'taskapi_realtime'

// The first key of every per-project event lock (pg_advisory_xact_lock(int, int)); the second
// is a hash of the project id. A collision only makes two projects wait for each other.
const EVENT_LOCK_SPACE = 0x74617069

export type EventRow = { id: number; project_id: string; event: string; data: unknown; at: string }
type RawEventRow = Omit<EventRow, 'id'> & { id: string }

const toEvent = (row: RawEventRow): EventRow => ({ ...row, id: Number(row.id) })

/** Holds the project's event lock until the transaction ends, so its event ids commit in order. */
export async function lockProjectEvents(db: Executor, projectId: string) {
  await db`select pg_advisory_xact_lock(${EVENT_LOCK_SPACE}, hashtext(${projectId}))`
}

export async function insertEvent(
  db: Executor,
  event: { project_id: string; event: string; data: Record<string, unknown> },
) {
  const [row] = await db<{ id: string; at: string }[]>`
    insert into events (project_id, event, data)
    values (${event.project_id}, ${event.event}, ${db.json(event.data as postgres.JSONValue)})
    returning id, at
  `
  if (!row) throw new Error('event insert returned nothing')
  return { id: Number(row.id), at: row.at }
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
