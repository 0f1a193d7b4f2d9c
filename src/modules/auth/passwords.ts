import { busy } from '../../problems'

// Pinned so that a Bun upgrade cannot change them silently: OWASP's argon2id configuration
// (m = 19 MiB, t = 2, p = 1). Each running hash holds its memory, so with 64 MiB (the earlier
// setting) two sign-ins at once took the server's RSS past 200 MB.
export const PASSWORD_HASH_PARAMS = {
  algorithm: 'argon2id',
  memoryCost: 19_456,
  timeCost: 2,
} as const
const PARAMS = PASSWORD_HASH_PARAMS
const PHC_COSTS = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=\d+\$/

/** A hash weaker than PARAMS (or not argon2id) is replaced at the next sign-in; a stronger one is kept. */
function weakerThanParams(hash: string) {
  const costs = PHC_COSTS.exec(hash)
  return !costs || Number(costs[1]) < PARAMS.memoryCost || Number(costs[2]) < PARAMS.timeCost
}

export type PasswordHasher = {
  hash(password: string): Promise<string>
  /** Constant-work check: an unknown account is verified against a dummy hash. */
  verify(password: string, hash: string | undefined): Promise<boolean>
  needsRehash(hash: string): boolean
}

export type HashingLimits = {
  /** Hashes running at once (each takes 19 MiB). */
  concurrency: number
  /** Hashes that may wait for a slot; one more is refused at once. */
  queueMax: number
  /** How long a hash may wait for a slot before it is refused. */
  waitMs: number
}

/**
 * Argon2id through Bun.password behind a bounded queue: beyond `queueMax` waiting, or after
 * `waitMs` of waiting, a hash is refused with 503 and Retry-After instead of delaying everyone.
 */
export async function createPasswordHasher(limits: HashingLimits): Promise<PasswordHasher> {
  const limit = boundedSemaphore(limits)
  // Hashed in the background: awaiting it here would add ~0.3 s to every start.
  const dummy = Bun.password.hash(crypto.randomUUID(), PARAMS)
  return {
    hash: (password) => limit(() => Bun.password.hash(password, PARAMS)),
    verify: async (password, hash) => {
      const against = hash ?? (await dummy)
      const ok = await limit(() => Bun.password.verify(password, against).catch(() => false))
      return ok && hash !== undefined
    },
    needsRehash: weakerThanParams,
  }
}

const BUSY_DETAIL = 'Too many sign-ins are being checked right now; retry shortly'

/** A semaphore whose waiting line is capped in length and in time. */
export function boundedSemaphore({ concurrency, queueMax, waitMs }: HashingLimits) {
  let active = 0
  const waiting: { resume: () => void; timer: Timer }[] = []
  const release = () => {
    const next = waiting.shift()
    if (!next) {
      active--
      return
    }
    clearTimeout(next.timer)
    next.resume()
  }
  const acquire = () =>
    new Promise<void>((resume, reject) => {
      if (active < concurrency) {
        active++
        return resume()
      }
      if (waiting.length >= queueMax) return reject(busy(BUSY_DETAIL))
      const entry = {
        resume,
        timer: setTimeout(() => {
          waiting.splice(waiting.indexOf(entry), 1)
          reject(busy(BUSY_DETAIL))
        }, waitMs),
      }
      waiting.push(entry)
    })
  return async <T>(work: () => Promise<T>): Promise<T> => {
    await acquire()
    try {
      return await work()
    } finally {
      release()
    }
  }
}
