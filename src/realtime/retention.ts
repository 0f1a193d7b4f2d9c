import type { Config } from '../config'
import type { Sql } from '../db'
import { describeError, type Logger } from '../logger'
import { pruneEvents } from './queries'

const PRUNE_EVERY_MS = 10 * 60 * 1000

/**
 * Deletes events past their retention (older than EVENTS_RETENTION_HOURS and not among the
 * last EVENTS_RETENTION_PER_PROJECT of their project) now and every ten minutes.
 */
export function scheduleEventPrune(sql: Sql, config: Config, log: Logger) {
  const { retentionHours, retentionPerProject } = config.realtime
  const run = () =>
    pruneEvents(sql, retentionHours, retentionPerProject).then(
      (count) => count > 0 && log.info('events pruned', { count }),
      (error: unknown) => log.warn('event prune failed', describeError(error)),
    )
  void run()
  const timer = setInterval(run, PRUNE_EVERY_MS)
  timer.unref()
  return () => clearInterval(timer)
}
