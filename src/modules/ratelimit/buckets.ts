/** What one bucket said about one request, in the units the RateLimit headers use. */
export type Decision = {
  allowed: boolean
  /** The policy: `limit` requests per `windowSeconds`. */
  limit: number
  windowSeconds: number
  /** Whole requests left right now. */
  remaining: number
  /** Seconds until the bucket is full again. */
  resetSeconds: number
  /** Seconds until the next request would be allowed (0 when allowed). */
  retryAfterSeconds: number
}

type Bucket = { tokens: number; at: number }

/**
 * Token buckets of `limit` tokens refilled evenly over `windowSeconds`, one per key, in process.
 * The map is bounded: a key idle long enough to be full again is forgotten (a new bucket is the
 * same), and past `maxKeys` the least recently used keys go first, so a flood of distinct keys
 * cannot grow memory without end. Map order is insertion order; every use re-inserts its key, so
 * the oldest entries are always the least recently used.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()
  private readonly windowMs: number
  private readonly perMs: number

  constructor(
    readonly limit: number,
    readonly windowSeconds: number,
    readonly maxKeys: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.windowMs = windowSeconds * 1000
    this.perMs = limit / this.windowMs
  }

  get size() {
    return this.buckets.size
  }

  /** Takes one token for `key` when there is one. */
  take(key: string): Decision {
    const now = this.now()
    let bucket = this.buckets.get(key)
    if (bucket) {
      this.buckets.delete(key)
      bucket.tokens = Math.min(this.limit, bucket.tokens + (now - bucket.at) * this.perMs)
      bucket.at = now
    } else {
      this.evict(now)
      bucket = { tokens: this.limit, at: now }
    }
    this.buckets.set(key, bucket)
    const allowed = bucket.tokens >= 1
    if (allowed) bucket.tokens -= 1
    const seconds = (tokens: number) => Math.ceil(tokens / this.perMs / 1000)
    return {
      allowed,
      limit: this.limit,
      windowSeconds: this.windowSeconds,
      remaining: Math.floor(bucket.tokens),
      resetSeconds: seconds(this.limit - bucket.tokens),
      retryAfterSeconds: allowed ? 0 : Math.max(1, seconds(1 - bucket.tokens)),
    }
  }

  /** Makes room for one more key: idle (refilled) buckets first, then the least recently used. */
  private evict(now: number) {
    for (const [key, bucket] of this.buckets) {
      const idle = now - bucket.at >= this.windowMs
      if (!idle && this.buckets.size < this.maxKeys) break
      this.buckets.delete(key)
    }
  }
}
