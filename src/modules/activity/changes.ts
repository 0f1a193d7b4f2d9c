/**
 * The fields whose values differ between `before` and `after`, as `{ field: { old, new } }`:
 * the `details` of an update's activity entry. Only the listed fields are compared.
 */
export function changedFields<T extends Record<string, unknown>>(
  before: T,
  after: T,
  fields: readonly (keyof T & string)[],
): Record<string, { old: unknown; new: unknown }> {
  const changes: Record<string, { old: unknown; new: unknown }> = {}
  for (const field of fields) {
    const was = before[field] ?? null
    const now = after[field] ?? null
    if (JSON.stringify(was) !== JSON.stringify(now)) changes[field] = { old: was, new: now }
  }
  return changes
}
