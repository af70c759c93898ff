// Text taken from headers, made safe to reuse in a header: no CR, LF or other control character.

/**
 * Line breaks and the other whitespace controls (TAB, VT, FF, NEL), a run of them at a time:
 * each run becomes one space, so that the words it separated stay apart.
 */
const BREAKS = /[\t\n\v\f\r\u0085]+/g;

/** Every other C0 control, DEL and the C1 controls: removed. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what we remove
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/** Whether a value has any control character at all (most have none: one test, no copy). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what we look for
const ANY_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A header-derived value (a subject, a display name, an address, an id, a file name) without
 * control characters: a run of CR, LF, TAB, VT, FF or NEL becomes one space, any other C0 or
 * C1 control (and DEL) is removed. An encoded word (`=?utf-8?q?...=0D=0ABcc:...?=`) can carry
 * them past the header's own syntax; a helpdesk that reuses the value in a header of its own
 * must not be header-injected.
 */
export function cleanHeaderText(value: string): string {
  if (!ANY_CONTROL.test(value)) return value;
  return value.replace(BREAKS, ' ').replace(CONTROLS, '');
}
