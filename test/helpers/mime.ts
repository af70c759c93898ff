// Small MIME messages built in the tests: a multipart/mixed message and its parts.

/** A multipart/mixed message (boundary "b"): `headers`, then each part's lines. */
export function multipartMessage(
  headers: Record<string, string>,
  parts: string[][],
): string {
  return [
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    ...parts.flatMap(part => ['--b', ...part]),
    '--b--',
    '',
  ].join('\r\n');
}

/** A text/plain part. */
export function textPart(text: string): string[] {
  return ['Content-Type: text/plain', '', text];
}

/** An application/octet-stream attachment part named `name`, its content in base64. */
export function attachmentPart(
  name: string,
  content: string | Buffer,
): string[] {
  return [
    `Content-Type: application/octet-stream; name="${name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(content).toString('base64'),
  ];
}
