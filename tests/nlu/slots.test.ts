// The slot reader reads what the generator teaches the model: every phrasing
// in the templates of a tool with slots, filled with a real unit, amount,
// Wi-Fi name and passphrase, and update location, gives its slots (and no
// question back).
import { describe, expect, test } from "vitest";
import { expansions, NUM, TEMPLATES, UNIT } from "../../agents/nlu/generator.ts";
import { slotsFor } from "../../agents/nlu/understand.ts";
import { tokens } from "../../agents/nlu/text.ts";
import { PSK, SSID, wifiWords } from "../../agents/nlu/wifi.ts";
import { SOURCE, sourceWords } from "../../agents/nlu/source.ts";

const read = (intent: string, text: string) => {
  const wifi = wifiWords(text);
  const where = sourceWords(wifi.model);
  return slotsFor(intent, tokens(where.model), ["camera"], wifi, where.source);
};

describe("slots from every template", () => {
  test("network.wifi: the network's name and the passphrase", () => {
    const wrong = TEMPLATES["network.wifi"]!.flatMap(expansions).map((e) => e.replace(SSID, "Home-Net5").replace(PSK, "secretpass1")).filter((text) => {
      const s = read("network.wifi", text);
      return !("slots" in s) || s.slots.ssid !== "Home-Net5" || s.slots.psk !== "secretpass1";
    });
    expect(wrong).toEqual([]);
  });

  test("unit.limit: a CPU or memory amount; network.open_port: the port; process.kill: the pid; with the unit where there is one", () => {
    const wrong: string[] = [];
    for (const [intent, want] of [["unit.limit", ["cpu_percent", "memory_mb"]], ["network.open_port", ["port"]], ["process.kill", ["pid"]]] as const) {
      // Only a phrasing that carries an amount can give one ("set a cpu limit on camera" is rightly asked about).
      for (const e of TEMPLATES[intent]!.flatMap(expansions).filter((e) => e.includes(NUM) || /\b(half|quarter|third|tenth|one|two)\b/.test(e))) {
        const text = e.replaceAll(UNIT, "camera").replaceAll(NUM, "40");
        const s = read(intent, text);
        if (!("slots" in s) || !want.some((k) => s.slots[k] !== undefined) || (e.includes(UNIT) && s.slots.unit !== "camera")) wrong.push(`${intent}: "${text}" → ${JSON.stringify(s)}`);
      }
    }
    expect(wrong.slice(0, 20)).toEqual([]);
  });

  test("update.install: the bundle's path or URL, as written, whatever ends the sentence", () => {
    const places = ["/var/lib/paio/paio-0.3.1-x86_64.raucb", "http://192.168.1.10:8000/paio.raucb", "https://updates.example.com/PAIO/paio-0.4.0.raucb?token=abc"];
    const wrong: string[] = [];
    TEMPLATES["update.install"]!.flatMap(expansions).filter((e) => e.includes(SOURCE)).forEach((e, i) => {
      const place = places[i % places.length]!;
      for (const text of [e.replace(SOURCE, place), `${e.replace(SOURCE, place)}.`, e.replace(SOURCE, `"${place}"`)]) {
        const s = read("update.install", text);
        if (!("slots" in s) || s.slots.source !== place) wrong.push(`"${text}" → ${JSON.stringify(s)}`);
      }
    });
    expect(wrong.slice(0, 20)).toEqual([]);
  });

  test("update.install without a path or URL asks where the update is", () => {
    const s = read("update.install", "install the update please");
    expect(s).toEqual({ ask: expect.stringMatching(/^Where is the update\? Give the bundle's full path on the device or an http:\/\/ URL/) });
    // A relative name is not a location: asked for too.
    expect("ask" in read("update.install", "install paio-0.3.1.raucb")).toBe(true);
  });

  test("paths and URLs are placeholders for the model, and only the first is the slot", () => {
    expect(sourceWords("update from http://192.168.1.10:8000/paio.raucb.")).toEqual({ source: "http://192.168.1.10:8000/paio.raucb", model: `update from ${SOURCE} .` });
    expect(sourceWords("cat /etc/passwd /tmp")).toEqual({ source: "/etc/passwd", model: `cat ${SOURCE} ${SOURCE}` });
    // Words with a slash inside, and a host without a scheme, are not locations.
    expect(sourceWords("start and/or stop camera")).toEqual({ model: "start and/or stop camera" });
    expect(sourceWords("update 192.168.1.10:8000/paio.raucb").source).toBeUndefined();
  });
});
