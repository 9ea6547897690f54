// Requests that name where an update is: "install the update from
// /var/lib/paio/paio-0.3.1-x86_64.raucb", "update from
// http://192.168.1.10:8000/paio.raucb". The path or URL is taken from the
// person's own words as they wrote it (letters keep their case) and the model
// sees a placeholder instead, as for a Wi-Fi name (wifi.ts); whether it is a
// place an update may come from is the catalog's to say (locationProblem).

export const SOURCE = "xpathx";

/** A URL (any scheme: one that is not http(s) is refused with its reason, not missed), or a path from the root. */
const LOCATION = /(["'])((?:[a-z][a-z0-9+.-]*:\/\/|\/)[^"']*)\1|\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+|(?<![\w.~:/-])\/(?=[^\s/])[^\s"'<>]*/gi;

export interface SourceWords {
  /** The first path or URL in the text. */
  source?: string;
  /** The text with each path and URL replaced by the placeholder: for the intent model. */
  model: string;
}

export function sourceWords(text: string): SourceWords {
  let source: string | undefined;
  const model = text.replace(LOCATION, (whole: string, _quote: string | undefined, quoted: string | undefined) => {
    // The end of a sentence is not part of the path: "install /data/x.raucb." or "(from /data/x.raucb)".
    const bare = quoted === undefined ? whole.replace(/[.,;:!?)\]]+$/, "") : whole;
    source ??= quoted ?? bare;
    return ` ${SOURCE} ${whole.slice(bare.length)}`;
  });
  return source === undefined ? { model: text } : { source, model: model.replace(/\s+/g, " ").trim() };
}
