// Text that reaches the operator's terminal or log from elsewhere (an admin endpoint's answer, a
// peer's refusal, what a stranger sent in its handshake), with its control characters written out.

// C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional overrides.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from an endpoint as it may reach the terminal: its control characters written out
 * (\x1b), so that an answer cannot move the cursor, retitle the window or clear the screen,
 * and at most `max` characters of it.
 */
export function printable(text: string, max = Infinity): string {
  const cut = text.length > max ? `${text.slice(0, max)}... (${text.length - max} more characters)` : text;
  return cut.replace(UNPRINTABLE, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}
