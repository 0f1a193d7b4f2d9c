import { busy } from '../../problems'

// Pinned so that a Bun upgrade cannot change them silently (OWASP: argon2id, m >= 19 MiB).
const PARAMS = { algorithm: 'argon2id', memoryCost: 65_536, timeCost: 2 } as const
const PHC_PARAMS = `m=${PARAMS.memoryCost},t=${PARAMS.timeCost},p=1`

export type PasswordHasher = {
  hash(password: string): Promise<string>
  /** Constant-work check: an unknown account is verified against a dummy hash. */
  verify(password: string, hash: string | undefined): Promise<boolean>
  needsRehash(hash: string): boolean
}

export type HashingLimits = {
  /** Hashes running at once (each takes 64 MiB). */
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
    needsRehash: (hash) => !hash.startsWith('$argon2id$') || !hash.includes(`$${PHC_PARAMS}$`),
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
