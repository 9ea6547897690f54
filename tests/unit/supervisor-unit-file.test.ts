import { describe, expect, test } from "vitest";
import { parseUnitFile, suggest, tomlErrorLine } from "../../init/supervisor/unit-file.ts";

const P = "/etc/paio/units/cam.toml";

function error(text: string, path = P): string {
  const r = parseUnitFile(text, path);
  if (r.ok) throw new Error("expected an error");
  return r.error;
}

describe("unit files", () => {
  test("a valid file gives a unit named after the file, with defaults", () => {
    const r = parseUnitFile('exec = ["/usr/bin/cam", "--fps", "30"]\nenv = { LOG_LEVEL = "info" }\n', P);
    expect(r).toEqual({
      ok: true,
      unit: { name: "cam", path: P, description: "", exec: ["/usr/bin/cam", "--fps", "30"], restart: "on-failure", env: { LOG_LEVEL: "info" } },
    });
  });

  test("invalid TOML names the file and the line", () => {
    expect(error('description = "x"\nexec = ["/bin/true"]\nrestart = = "always"\n')).toMatch(/^\/etc\/paio\/units\/cam\.toml line 3: not valid TOML/);
    expect(error('exec = ["/bin/true"]\nrestart = "always\n')).toMatch(/ line 2: /);
    expect(error("= 1\n")).toMatch(/ line 1: /);
  });

  test("a multi-line array does not hide the line of a later error", () => {
    const text = 'exec = [\n  "/bin/sh",\n  "-c",\n  "true",\n]\nrestart "always"\n';
    expect(tomlErrorLine(text)).toBe(6);
    expect(error(text)).toMatch(/ line 6: /);
  });

  test("an array that is never closed is reported where it starts", () => {
    expect(error('description = "ok"\nexec = ["/bin/true",\nrestart = "never"\n')).toMatch(/ line 2: /);
  });

  test("an unknown field is refused with a suggestion and the known fields", () => {
    const e = error('exec = ["/bin/true"]\nrestrat = "always"\n');
    expect(e).toContain("field 'restrat': unknown field (did you mean 'restart'?)");
    expect(e).toContain("known fields: description, exec, restart, env");
    expect(suggest("zzzzzz", ["exec", "restart"])).toBeUndefined();
  });

  test("wrong types name the field and what is expected", () => {
    expect(error('exec = "/bin/true"\n')).toContain("field 'exec': expected an array of strings");
    expect(error('exec = ["/bin/true", 3]\n')).toContain("field 'exec': expected an array of strings");
    expect(error('exec = ["/bin/true"]\nrestart = "sometimes"\n')).toContain(`field 'restart': expected one of "always", "on-failure", "never", got "sometimes"`);
    expect(error('exec = ["/bin/true"]\ndescription = 5\n')).toContain("field 'description': expected a string");
    expect(error('exec = ["/bin/true"]\nenv = { A = 1 }\n')).toContain("field 'env.A': expected a string");
    expect(error('exec = ["/bin/true"]\nenv = "A=1"\n')).toContain("field 'env': expected a table of strings");
  });

  test("a missing or empty exec is refused", () => {
    expect(error('restart = "always"\n')).toContain("field 'exec': missing");
    expect(error("exec = []\n")).toContain("field 'exec': empty");
  });

  test("a bad unit name is refused", () => {
    expect(error('exec = ["/bin/true"]\n', "/etc/paio/units/-bad name.toml")).toContain("bad unit name '-bad name'");
  });
});
