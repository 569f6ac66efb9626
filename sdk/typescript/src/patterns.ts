// Event-type patterns as seed 002's `subscribeToEvents` takes them and as the gateway's specs
// write them: an exact type (`user.notification`), a prefix (`platform.*`: every type that starts
// with `platform.`, however many dots follow), or `*` (every type).

import { GatewayUsageError } from './errors';

/** Checks patterns and returns a predicate for types; throws on an invalid pattern. */
export function typeMatcher(patterns: readonly string[]): (type: string) => boolean {
  if (patterns.length === 0) throw new GatewayUsageError('name at least one event type or pattern');
  const exact = new Set<string>();
  const prefixes: string[] = [];
  let any = false;
  for (const pattern of patterns) {
    if (pattern === '*') {
      any = true;
    } else if (pattern.endsWith('.*') && pattern.length > 2 && !pattern.slice(0, -2).includes('*')) {
      prefixes.push(pattern.slice(0, -1));
    } else if (pattern !== '' && !pattern.includes('*') && !pattern.includes(',')) {
      exact.add(pattern);
    } else {
      throw new GatewayUsageError(
        `\`${pattern}\` is not an event type pattern: use a type (\`user.notification\`), a prefix (\`platform.*\`) or \`*\``,
      );
    }
  }
  return (type) => any || exact.has(type) || prefixes.some((prefix) => type.startsWith(prefix));
}
