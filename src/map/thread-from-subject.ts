// A route's threadFromSubject: the thread id a subject tag names ("Re: [#T123] Printer" -> "T123").
import { subjectPatternProblem } from '../config/subject-pattern.js';

/**
 * The longest subject a pattern is run against: the first 998 characters (RFC 5322's line
 * limit). An operator's pattern may backtrack badly on a long hostile subject; bounding the
 * input bounds the work, and a ticket tag sits near the start of a subject anyway.
 */
export const SUBJECT_MATCH_CHARS = 998;

/** Compiled patterns, by their source: a route's pattern is compiled once, not per message. */
const compiled = new Map<string, RegExp>();

/** More patterns than any route table holds: reloads with new patterns cannot grow it forever. */
const MAX_COMPILED = 256;

/**
 * The thread id `pattern` finds in `subject`: the first capturing group of its first match, in
 * the subject's first SUBJECT_MATCH_CHARS characters, trimmed; undefined when there is no match
 * or the group matched nothing. A pattern that does not compile finds nothing (the
 * configuration check refuses it before any message is mapped).
 */
export function threadFromSubject(
  subject: string | undefined,
  pattern: string | undefined,
): string | undefined {
  if (!subject || !pattern) return undefined;
  const regex = compile(pattern);
  const match = regex?.exec(subject.slice(0, SUBJECT_MATCH_CHARS));
  const id = match?.[1]?.trim();
  return id ? id : undefined;
}

function compile(pattern: string): RegExp | undefined {
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    if (subjectPatternProblem(pattern) !== undefined) return undefined;
    regex = new RegExp(pattern);
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(pattern, regex);
  }
  return regex;
}
