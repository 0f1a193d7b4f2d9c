/**
 * Awaits queries that were issued together (postgres.js pipelines the queries of one connection,
 * a transaction's included: they run one after the other on the server, in the order issued,
 * for one round trip) and answers the first one's result. When some fail, the error thrown is
 * that of the first failing one in issue order, whichever settles first: after a failure in a
 * transaction the later queries fail too, only because the transaction is aborted.
 */
export async function inOrder<T>(first: Promise<T>, ...rest: Promise<unknown>[]): Promise<T> {
  const settled = await Promise.allSettled([first, ...rest])
  for (const result of settled) if (result.status === 'rejected') throw result.reason
  return (settled[0] as PromiseFulfilledResult<T>).value
}
