import type { Executor } from '../../db'

export type StoredAnswer = {
  fingerprint: string
  status: number | null
  body: string | null
  headers: Record<string, string>
  /** An upload's file digest (see bindStreamedBody); null for other requests. */
  body_digest: string | null
}

/**
 * Claims (user, key) for a request under `claim`; false when a live row already holds it. A row
 * still without an answer whose claim is older than `staleSeconds` was abandoned (its request's
 * process died before answering): it is taken over, and the abandoned request can no longer store
 * an answer (storeAnswer matches the claim), so its change, if it ever tries to commit, rolls back.
 */
export async function claimKey(
  db: Executor,
  userId: string,
  key: string,
  fingerprint: string,
  claim: string,
  limits: { ttlSeconds: number; staleSeconds: number },
) {
  const rows = await db`
    insert into idempotency_keys (user_id, key, fingerprint, claim, expires_at)
    values (${userId}, ${key}, ${fingerprint}, ${claim},
      now() + make_interval(secs => ${limits.ttlSeconds}))
    on conflict (user_id, key) do update
      set fingerprint = excluded.fingerprint, claim = excluded.claim, created_at = now(),
        expires_at = excluded.expires_at, body_digest = null
      where idempotency_keys.status is null
        and idempotency_keys.created_at < now() - make_interval(secs => ${limits.staleSeconds})
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
  claim: string,
  answer: {
    status: number
    body: string
    headers: Record<string, string>
    bodyDigest: string | null
  },
) {
  const rows = await db`
    update idempotency_keys
    set status = ${answer.status}, body = ${answer.body}, headers = ${db.json(answer.headers)},
      body_digest = ${answer.bodyDigest}
    where user_id = ${userId} and key = ${key} and claim = ${claim} and status is null
  `
  return rows.count === 1
}

/** Gives the key back after an answer that is not kept (not a 2xx). */
export async function releaseKey(db: Executor, userId: string, key: string, claim: string) {
  await db`
    delete from idempotency_keys
    where user_id = ${userId} and key = ${key} and claim = ${claim} and status is null
  `
}

export async function deleteExpiredKeys(db: Executor) {
  const rows = await db`delete from idempotency_keys where expires_at <= now()`
  return rows.count
}
