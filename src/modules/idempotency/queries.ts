import type { Executor } from '../../db'

export type StoredAnswer = {
  fingerprint: string
  status: number | null
  body: string | null
  headers: Record<string, string>
  /** An upload's file digest (see bindStreamedBody); null for other requests. */
  body_digest: string | null
}

/** Claims (user, key) for a request; false when a live row already holds it. */
export async function claimKey(
  db: Executor,
  userId: string,
  key: string,
  fingerprint: string,
  ttlSeconds: number,
) {
  const rows = await db`
    insert into idempotency_keys (user_id, key, fingerprint, expires_at)
    values (${userId}, ${key}, ${fingerprint}, now() + make_interval(secs => ${ttlSeconds}))
    on conflict (user_id, key) do nothing
    returning 1
  `
  return rows.count === 1
}

/** The row holding (user, key) while it is live; an expired one is deleted and not returned. */
export async function selectLiveKey(db: Executor, userId: string, key: string) {
  await db`
    delete from idempotency_keys
    where user_id = ${userId} and key = ${key} and expires_at <= now()
  `
  const [row] = await db<StoredAnswer[]>`
    select fingerprint, status, body, headers, body_digest
    from idempotency_keys
    where user_id = ${userId} and key = ${key}
  `
  return row
}

/**
 * Keeps the 2xx answer of the request that claimed the key (in the handler's transaction when it
 * has one), with an upload's file digest.
 */
export async function storeAnswer(
  db: Executor,
  userId: string,
  key: string,
  answer: {
    status: number
    body: string
    headers: Record<string, string>
    bodyDigest: string | null
  },
) {
  await db`
    update idempotency_keys
    set status = ${answer.status}, body = ${answer.body}, headers = ${db.json(answer.headers)},
      body_digest = ${answer.bodyDigest}
    where user_id = ${userId} and key = ${key} and status is null
  `
}

/** Gives the key back after an answer that is not kept (not a 2xx). */
export async function releaseKey(db: Executor, userId: string, key: string) {
  await db`
    delete from idempotency_keys
    where user_id = ${userId} and key = ${key} and status is null
  `
}

export async function deleteExpiredKeys(db: Executor) {
  const rows = await db`delete from idempotency_keys where expires_at <= now()`
  return rows.count
}
