'use strict';
// Twilio's `Contains` search pattern (AvailablePhoneNumber spec text):
// 2-16 characters of digits and latin letters (letters are keypad digits),
// `*` = exactly one digit, `%` = any run of digits, a leading `+` anchors at
// the start and a trailing `$` at the end. Wildcards may only stand at the
// start or the end of the digits, the digits must number at least two, and
// `%`, `+`, `$` may not touch another meta-character.
// The pattern is matched against the E.164 digits without the `+`, country
// code included, so `+14155550123$` names exactly one number.

const KEYPAD = {};
['', '', 'ABC', 'DEF', 'GHI', 'JKL', 'MNO', 'PQRS', 'TUV', 'WXYZ'].forEach((letters, digit) => {
  for (const ch of letters) KEYPAD[ch] = String(digit);
});

// Returns a RegExp, or throws a message string when the pattern is invalid.
function compileContains(raw) {
  const p = String(raw);
  if (p.length < 2 || p.length > 16) throw 'Contains must be between 2 and 16 characters long';
  if (!/^[0-9A-Za-z*%+$]+$/.test(p)) throw 'Contains may only contain digits, letters and the characters * % + $';
  const startAnchor = p.startsWith('+');
  const endAnchor = p.endsWith('$') && p.length > 1;
  const body = p.slice(startAnchor ? 1 : 0, endAnchor ? -1 : undefined);
  if (body.includes('+')) throw "'+' may only start the Contains pattern";
  if (body.includes('$')) throw "'$' may only end the Contains pattern";
  const m = /^([*%]*)([0-9A-Za-z]*)([*%]*)$/.exec(body);
  if (!m) throw 'Contains wildcards may only stand at the start or the end of the pattern';
  const [, lead, core, trail] = m;
  if (core.length < 2) throw 'Contains must include at least two digits or letters';
  const metas = (startAnchor ? '+' : '') + lead;
  const tail = trail + (endAnchor ? '$' : '');
  for (const run of [metas, tail]) {
    for (let i = 0; i + 1 < run.length; i++) {
      const a = run[i], b = run[i + 1];
      if (!(a === '*' && b === '*') && !(a === '+' && b === '*') && !(a === '*' && b === '$')) {
        throw 'Contains meta-characters %, + and $ cannot be adjacent to each other';
      }
    }
  }
  const digits = core.toUpperCase().replace(/[A-Z]/g, (c) => KEYPAD[c]);
  const wild = (s) => s.replace(/\*/g, '\\d').replace(/%/g, '\\d*');
  return new RegExp((startAnchor ? '^' : '') + wild(lead) + digits + wild(trail) + (endAnchor ? '$' : ''));
}

module.exports = { compileContains, KEYPAD };
