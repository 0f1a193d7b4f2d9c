// `@name` not glued to a preceding word character, so e-mail addresses are not mentions.
const MENTION = /(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{3,50})/g

/**
 * The usernames a comment may mention, lower-cased. A mention at the end of a sentence
 * ("thanks @ada.") also tries the name without its trailing dots or dashes, since both are
 * valid username characters.
 */
export function mentionedUsernames(content: string): string[] {
  const names = new Set<string>()
  for (const match of content.matchAll(MENTION)) {
    const name = (match[1] ?? '').toLowerCase()
    names.add(name)
    const trimmed = name.replace(/[.-]+$/, '')
    if (trimmed.length >= 3) names.add(trimmed)
  }
  return [...names]
}
