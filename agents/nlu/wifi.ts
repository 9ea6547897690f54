// Requests that carry a Wi-Fi network's name and passphrase: "connect to wifi
// HOME with password 'hunter22'". The passphrase is taken from the person's
// own words (quoted when it has spaces), never guessed; everything that is
// shown, kept in the console's history or written to the audit log has it
// replaced by ********. The model sees placeholders, not the values.

import { HIDDEN } from "../tools/catalog.ts";

export const SSID = "xssidx";
export const PSK = "xpskx";

/** "password X", "password: X", "the password is X", "the key being X", "the passphrase will be X". */
const PSK_RE = /\b(password|passphrase|passcode|passwd|psk|pw|key)(\s+(?:is|being|was|will be|should be|would be)|\s*[:=])?\s+("[^"]*"|'[^']*'|\S+)/i;
const NAME = `("[^"]*"|'[^']*'|[^\\s,;:]+)`;
/** "wifi HOME", "the network called HOME", "ssid: HOME", "the wifi is HOME", "set the wifi to HOME". */
const SSID_AFTER = new RegExp(`\\b(?:wi-?fi|wlan|wireless|network|ssid|access point|hotspot)(?:\\s+(?:network|called|named|name|is|id|to))*(?:\\s*[:=])?\\s+${NAME}`, "gi");
/** "the HOME wifi", "the HOME network". */
const SSID_BEFORE = new RegExp(`\\b(?:the|to|onto|on|join|use)\\s+${NAME}\\s+(?:wi-?fi|wlan|wireless|network|hotspot)\\b`, "gi");
/** "connect to HOME", "join HOME", "connect HOME", "hook the device up to HOME", "switch the wifi over to HOME". */
const SSID_JOIN = new RegExp(`\\b(?:(?:connect|hook|get|switch|move|attach|put)(?:\\s+[\\w-]+){0,3}?\\s+(?:to|onto|on)|join|use|connect)\\s+(?:the\\s+)?${NAME}`, "gi");
const FILLER = new Set(["the", "to", "a", "my", "our", "with", "using", "called", "named", "name", "network", "wifi", "wi-fi", "wlan", "wireless", "ssid", "password", "passphrase", "key", "and", "on", "onto", "is", "over", "up", "it", "me", "us", "this", "that", "new", "same", "other"]);
const unquote = (s: string) => (/^(["']).*\1$/.test(s) ? s.slice(1, -1) : s);

export interface WifiWords {
  ssid?: string;
  psk?: string;
  /** The text with the passphrase hidden: for history, transcript and audit. */
  masked: string;
  /** The text with placeholders: for the intent model. */
  model: string;
}

export function wifiWords(text: string): WifiWords {
  let masked = text;
  let model = text;
  let psk: string | undefined;
  const p = PSK_RE.exec(text);
  if (p) {
    psk = unquote(p[3]!);
    const at = p.index + p[0].length - p[3]!.length;
    masked = text.slice(0, at) + HIDDEN + text.slice(at + p[3]!.length);
    model = text.slice(0, at) + PSK + text.slice(at + p[3]!.length);
  }
  // A name is looked for only beside a passphrase ("switch to auto mode" names no network),
  // and only before it, so a passphrase never becomes a name.
  const head = p ? text.slice(0, p.index) : "";
  let ssid: string | undefined;
  find: for (const re of [SSID_AFTER, SSID_BEFORE, SSID_JOIN]) {
    // Matches may overlap ("wireless: ssid Barn"): each search starts one character after the last match began.
    re.lastIndex = 0;
    for (let m = re.exec(head); m; re.lastIndex = m.index + 1, m = re.exec(head)) {
      const v = unquote(m[1]!);
      if (v && !FILLER.has(v.toLowerCase())) {
        ssid = v;
        model = model.replace(m[1]!, SSID);
        break find;
      }
    }
  }
  return { ssid, psk, masked, model };
}

/** The text with any passphrase hidden. */
export function maskSecrets(text: string): string {
  return wifiWords(text).masked;
}
