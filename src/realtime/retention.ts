import type { Config } from '../config'
import type { Sql } from '../db'
import { describeError, type Logger } from '../logger'
import { pruneEvents } from './queries'

/**
 * Deletes events past their retention (older than EVENTS_RETENTION_HOURS and not among the
 * last EVENTS_RETENTION_PER_PROJECT of their project) now and every EVENTS_PRUNE_INTERVAL_MS.
 */
export function scheduleEventPrune(sql: Sql, config: Config, log: Logger) {
  const { retentionHours, retentionPerProject, pruneIntervalMs } = config.realtime
  const run = () =>
    pruneEvents(sql, retentionHours, retentionPerProject).then(
      (count) => count > 0 && log.info('events pruned', { count }),
      (error: unknown) => log.warn('event prune failed', describeError(error)),
    )
  void run()
  const timer = setInterval(run, pruneIntervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
