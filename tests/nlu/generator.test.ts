// The generator's template language: {a|b} is one of a and b, [a] is a or
// nothing, [a|b] is nothing or one of a and b; groups nest.
import { describe, expect, test } from "vitest";
import { expand, expansions, generate, INTENTS, parseTemplate, TEMPLATES } from "../../agents/nlu/generator.ts";
import { PERSON_TOOLS } from "../../agents/tools/catalog.ts";
import { rng } from "../../agents/models/train.ts";

describe("template expansion", () => {
  test("[a|b] is nothing, a or b; never the literal a|b", () => {
    expect(expansions("x [a|b] y").sort()).toEqual(["x a y", "x b y", "x y"]);
    const r = rng(1);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(expand("x [a|b] y", r));
    expect([...seen].sort()).toEqual(["x a y", "x b y", "x y"]);
  });

  test("{…} picks one, […] is optional, and groups nest", () => {
    expect(expansions("{a|b} c").sort()).toEqual(["a c", "b c"]);
    expect(expansions("top [by {cpu|memory}]").sort()).toEqual(["top", "top by cpu", "top by memory"]);
    expect(expansions("{x [y|z]|w}").sort()).toEqual(["w", "x", "x y", "x z"]);
    expect(expansions("it['s] log")).toEqual(["it log", "it's log"]);
    const r = rng(2);
    for (let i = 0; i < 100; i++) expect(expansions("{a|b [c|d {e|f}]} g")).toContain(expand("{a|b [c|d {e|f}]} g", r));
  });

  test("unbalanced templates are refused", () => {
    expect(() => parseTemplate("a {b|c")).toThrow(/'}' missing/);
    expect(() => parseTemplate("a b]")).toThrow(/unexpected/);
    expect(() => parseTemplate("a|b")).toThrow(/unexpected '\|'/);
  });

  test("no template and no generated utterance holds the template syntax", () => {
    for (const [intent, tpls] of Object.entries(TEMPLATES)) for (const t of tpls) for (const e of expansions(t)) expect(e, `${intent}: ${t}`).not.toMatch(/[{}[\]|]/);
    for (const e of generate(200, 7)) expect(e.text).not.toMatch(/[{}[\]|]/);
  });

  test("the generator has templates for every tool a person can ask for, and for nothing else", () => {
    expect([...INTENTS].sort()).toEqual(PERSON_TOOLS.map((t) => t.name).sort());
  });
});
