// The slot reader reads what the generator teaches the model: every phrasing
// in the templates of a tool with slots, filled with a real unit, amount and
// Wi-Fi name and passphrase, gives its slots (and no question back).
import { describe, expect, test } from "vitest";
import { expansions, NUM, TEMPLATES, UNIT } from "../../agents/nlu/generator.ts";
import { slotsFor } from "../../agents/nlu/understand.ts";
import { tokens } from "../../agents/nlu/text.ts";
import { PSK, SSID, wifiWords } from "../../agents/nlu/wifi.ts";

const read = (intent: string, text: string) => {
  const wifi = wifiWords(text);
  return slotsFor(intent, tokens(wifi.model), ["camera"], wifi);
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
});
