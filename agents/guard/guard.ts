// The guard: one decision for every tool call, from the agent or a person.
// It looks only at the typed call (tool, slots, origin), the policy and the
// autonomy mode — never at free text — so nothing written in a log line, a
// process name or a model's answer can change what it allows.

import { toolSpec, type ToolCall } from "../tools/catalog.ts";
import type { Mode } from "../protocol.ts";
import type { Policy } from "./policy.ts";

export type Verdict =
  /** Run it now. */
  | "allow"
  /** Ask the person first; run only after a yes. */
  | "confirm"
  /** The agent may not act alone: record it as a proposal for a person. */
  | "propose"
  /** Nobody may run it. */
  | "forbid";

export interface Decision {
  verdict: Verdict;
  /** The policy rule that decided, in words. */
  rule: string;
}

export function decide(call: ToolCall, policy: Policy, mode: Mode, confirmed = false): Decision {
  const spec = toolSpec(call.tool);
  if (!spec) return { verdict: "forbid", rule: `unknown tool '${call.tool}'` };
  if (policy.forbidden.includes(call.tool)) return { verdict: "forbid", rule: `${policy.source}: tools.forbidden lists ${call.tool}` };
  const unit = typeof call.args.unit === "string" ? call.args.unit : undefined;
  const isProtected = unit !== undefined && policy.protectedUnits.includes(unit) && spec.effect !== "read";

  if (call.origin === "agent") {
    if (mode === "off") return { verdict: "forbid", rule: "autonomy mode is off: the agent only watches" };
    if (mode === "advise") return { verdict: "propose", rule: "autonomy mode is advise: the agent only proposes" };
    if (isProtected) return { verdict: "propose", rule: `${unit} is a protected unit (${policy.source}): a person decides` };
    if (!policy.agentAlone.includes(spec.risk)) return { verdict: "propose", rule: `risk '${spec.risk}' is not in agent.alone (${policy.source}): a person decides` };
    return { verdict: "allow", rule: `risk '${spec.risk}' is in agent.alone; autonomy mode auto` };
  }

  // A person (or the LLM backend, on a person's behalf).
  if (spec.effect === "read") return { verdict: "allow", rule: "reading changes nothing" };
  const reasons: string[] = [];
  if (spec.effect === "dangerous") reasons.push(`${call.tool} is dangerous`);
  if (policy.personConfirm.includes(spec.risk)) reasons.push(`risk '${spec.risk}' needs confirmation`);
  if (policy.alwaysConfirm.includes(call.tool)) reasons.push(`tools.confirm lists ${call.tool}`);
  if (isProtected) reasons.push(`${unit} is a protected unit`);
  if (call.origin === "llm") reasons.push("the change was suggested by the language model backend");
  if (reasons.length && !confirmed) return { verdict: "confirm", rule: reasons.join("; ") };
  return { verdict: "allow", rule: reasons.length ? `confirmed by the person (${reasons.join("; ")})` : `risk '${spec.risk}' needs no confirmation` };
}
