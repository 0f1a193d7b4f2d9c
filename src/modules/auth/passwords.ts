// Pinned so that a Bun upgrade cannot change them silently (OWASP: argon2id, m >= 19 MiB).
const PARAMS = { algorithm: 'argon2id', memoryCost: 65_536, timeCost: 2 } as const
const PHC_PARAMS = `m=${PARAMS.memoryCost},t=${PARAMS.timeCost},p=1`

export type PasswordHasher = {
  hash(password: string): Promise<string>
  /** Constant-work check: an unknown account is verified against a dummy hash. */
  verify(password: string, hash: string | undefined): Promise<boolean>
  needsRehash(hash: string): boolean
}

/** Argon2id through Bun.password, at most `concurrency` hashes at once (each takes 64 MiB). */
export async function createPasswordHasher(concurrency: number): Promise<PasswordHasher> {
  const limit = semaphore(concurrency)
  const dummy = await Bun.password.hash(crypto.randomUUID(), PARAMS)
  return {
    hash: (password) => limit(() => Bun.password.hash(password, PARAMS)),
    verify: async (password, hash) => {
      const ok = await limit(() => Bun.password.verify(password, hash ?? dummy).catch(() => false))
      return ok && hash !== undefined
    },
    needsRehash: (hash) => !hash.startsWith('$argon2id$') || !hash.includes(`$${PHC_PARAMS}$`),
  }
}

function semaphore(size: number) {
  let active = 0
  const waiting: (() => void)[] = []
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (active >= size) await new Promise<void>((resume) => waiting.push(resume))
    else active++
    try {
      return await work()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else active--
    }
  }
}
