// A hot SoC: the monitor reads the kernel's thermal zones and the CPU
// frequency (agents/monitor/thermal.ts); this turns them into the state of
// the SoC and, when it stays hot longer than a window (a second over the
// threshold is no incident), into one `soc-hot` finding per episode. An
// episode ends, with hysteresis, only when the SoC has been cooler than the
// threshold by a margin, and not throttled, for a while; the agent then
// closes the incident and gives back the CPU limits it lowered.
//
// The threshold of a zone: the policy's `thermal.hot_c` when set; otherwise
// the zone's passive trip point (where the kernel itself starts cooling)
// minus `thermal.trip_margin_c`; otherwise 80 °C, kept that margin under a
// critical trip point when the board has a lower one.

import type { Finding } from "./detect.ts";
import { socZones, throttleOf, type Throttle, type ThermalReading, type ThermalZone } from "../monitor/thermal.ts";

export interface ThermalPolicy {
  /** A fixed threshold, °C; undefined: from the zone's trip points (see above). */
  hotC?: number;
  /** How far under a passive (or critical) trip point the threshold lies, °C. */
  tripMarginC: number;
  /** The SoC must stay hot this long before it is an incident. */
  hotForMs: number;
  /** Cool means this far under the threshold, °C (the hysteresis). */
  coolMarginC: number;
  /** ... for this long, before the incident closes and the limits go back. */
  coolForMs: number;
  /** The CPU limit (percent of one core) the first remedy gives each unit that is not protected; the second gives half of it. */
  cpuCapPercent: number;
  /** Whether a throttled CPU alone (without a temperature over the threshold) is an incident. */
  throttling: boolean;
}

export const DEFAULT_THERMAL: ThermalPolicy = {
  tripMarginC: 5,
  hotForMs: 30_000,
  coolMarginC: 5,
  coolForMs: 120_000,
  cpuCapPercent: 50,
  throttling: true,
};

/** The temperature used when neither the policy nor the zone says. */
export const DEFAULT_HOT_C = 80;

export interface Threshold {
  hotC: number;
  /** Where it came from, in words. */
  from: string;
}

export function thresholdOf(z: ThermalZone, p: ThermalPolicy): Threshold {
  if (p.hotC !== undefined) return { hotC: p.hotC, from: "the policy's thermal.hot_c" };
  const passive = z.trips.filter((t) => t.type === "passive").sort((a, b) => a.tempC - b.tempC)[0];
  if (passive) return { hotC: passive.tempC - p.tripMarginC, from: `${z.type}'s passive trip point ${+passive.tempC.toFixed(1)} °C minus ${p.tripMarginC} °C` };
  const critical = z.trips.filter((t) => t.type === "critical" || t.type === "hot").sort((a, b) => a.tempC - b.tempC)[0];
  if (critical && critical.tempC - p.tripMarginC < DEFAULT_HOT_C) return { hotC: critical.tempC - p.tripMarginC, from: `${z.type}'s ${critical.type} trip point ${+critical.tempC.toFixed(1)} °C minus ${p.tripMarginC} °C` };
  return { hotC: DEFAULT_HOT_C, from: `the default ${DEFAULT_HOT_C} °C` };
}

/** The SoC as the agent sees it now. */
export interface SocState {
  /** "ok", "hot" (over the threshold or throttled), "cooling" (an episode is open and it is not hot now), "unknown" (no sensors). */
  state: "ok" | "hot" | "cooling" | "unknown";
  temperature_c?: number;
  zone?: string;
  threshold_c?: number;
  threshold_from?: string;
  throttled?: boolean;
  throttle_reason?: string;
}

export interface SocRecovery {
  since: number;
  until: number;
  peakC?: number;
  /** What the SoC looks like now, in words. */
  what: string;
}

interface Hottest {
  zone: ThermalZone;
  threshold: Threshold;
  /** How far over (or, negative, under) its threshold, °C. */
  over: number;
}

export class Thermal {
  private hotSince: number | undefined;
  private coolSince: number | undefined;
  /** The open episode: reported once, until the SoC has been cool for coolFor. */
  private episode: { since: number; peakC?: number } | undefined;
  private recoveries: SocRecovery[] = [];
  private last: { hottest?: Hottest; throttle: Throttle; hot: boolean; cool: boolean; sensors: number; at: number } | undefined;
  private pending: Finding[] = [];

  constructor(readonly policy: ThermalPolicy = DEFAULT_THERMAL) {}

  /**
   * One reading (the latest the monitor has) at `now`, with the system's CPU
   * use for telling a throttled CPU from an idle one. Hot: any SoC zone at or
   * over its threshold, or throttled (when the policy counts throttling).
   * Cool: every SoC zone at least coolMarginC under its threshold, and not
   * throttled. In between, neither clock runs: that is the hysteresis.
   */
  observe(r: ThermalReading | undefined, now: number, busyPercent?: number): void {
    const zones = r ? socZones(r) : [];
    const hottest = zones
      .map((zone) => {
        const threshold = thresholdOf(zone, this.policy);
        return { zone, threshold, over: zone.tempC - threshold.hotC };
      })
      .reduce<Hottest | undefined>((h, z) => (!h || z.over > h.over ? z : h), undefined);
    const throttle = r ? throttleOf(r, busyPercent) : { throttled: undefined, reason: "no reading yet" };
    const throttled = this.policy.throttling && throttle.throttled === true;
    const hot = (hottest !== undefined && hottest.over >= 0) || throttled;
    const cool = !hot && throttle.throttled !== true && (hottest === undefined || hottest.over <= -this.policy.coolMarginC);
    this.last = { hottest, throttle, hot, cool, sensors: zones.length, at: now };
    if (hot) {
      this.hotSince ??= now;
      this.coolSince = undefined;
    } else {
      this.hotSince = undefined;
      if (cool) this.coolSince ??= now;
      else this.coolSince = undefined;
    }
    if (this.episode && hottest) this.episode.peakC = Math.max(this.episode.peakC ?? -Infinity, hottest.zone.tempC);
    if (!this.episode && this.hotSince !== undefined && now - this.hotSince >= this.policy.hotForMs) {
      this.episode = { since: this.hotSince, peakC: hottest?.zone.tempC };
      this.pending.push(this.finding(now));
    }
    if (this.episode && this.coolSince !== undefined && now - this.coolSince >= this.policy.coolForMs) {
      this.recoveries.push({ since: this.episode.since, until: now, peakC: this.episode.peakC, what: this.describe() });
      this.episode = undefined;
    }
  }

  private finding(now: number): Finding {
    const l = this.last!;
    const h = l.hottest;
    const hotFor = Math.round((now - this.hotSince!) / 1000);
    const overTemp = h !== undefined && h.over >= 0;
    const throttled = l.throttle.throttled === true;
    const what = [
      overTemp ? `the SoC is at ${h!.zone.tempC.toFixed(1)} °C (${h!.zone.type}), over its ${+h!.threshold.hotC.toFixed(1)} °C threshold` : h ? `the SoC is at ${h.zone.tempC.toFixed(1)} °C (${h.zone.type})` : "",
      throttled ? `the CPU is throttled (${l.throttle.reason})` : "",
    ].filter(Boolean);
    return {
      class: "soc-hot",
      unit: null,
      detail: "",
      summary: `${what.join(" and ")}, for ${hotFor} s`,
      inputs: {
        temperature_c: h ? +h.zone.tempC.toFixed(1) : undefined,
        zone: h?.zone.type,
        threshold_c: h ? +h.threshold.hotC.toFixed(1) : undefined,
        threshold_from: h?.threshold.from,
        throttled: l.throttle.throttled,
        throttle_reason: l.throttle.reason,
        hot_for_s: hotFor,
        since: this.hotSince,
      },
      evidence: {
        by: "rule",
        name: "soc-hot",
        rule: `a SoC zone at or over its threshold (${h ? h.threshold.from : `the policy's thermal.hot_c, or a zone's passive trip point minus ${this.policy.tripMarginC} °C, or ${DEFAULT_HOT_C} °C`})${this.policy.throttling ? ", or the CPU throttled," : ""} for ${this.policy.hotForMs / 1000} s`,
      },
      time: now,
    };
  }

  /** The SoC now, in words: "58.0 °C (cpu-thermal), 17 °C under its 75 °C threshold; not throttled". */
  describe(): string {
    const l = this.last;
    if (!l) return "no reading yet";
    const h = l.hottest;
    const temp = h ? `${h.zone.tempC.toFixed(1)} °C (${h.zone.type}), ${Math.abs(h.over).toFixed(1)} °C ${h.over >= 0 ? "over" : "under"} its ${+h.threshold.hotC.toFixed(1)} °C threshold` : "no thermal sensors";
    const thr = l.throttle.throttled === true ? `throttled (${l.throttle.reason})` : l.throttle.throttled === false ? "not throttled" : "";
    return [temp, thr].filter(Boolean).join("; ");
  }

  /** Episodes that have lasted longer than hotFor, once each. */
  findings(_now: number): Finding[] {
    return this.pending.splice(0);
  }

  /** Episodes that ended since the last call. */
  takeRecoveries(): SocRecovery[] {
    return this.recoveries.splice(0);
  }

  /** Hot right now (over a threshold, or throttled when that counts). */
  get hot(): boolean {
    return this.last?.hot ?? false;
  }

  /** An episode is open (reported and not yet cool for coolFor). */
  get open(): boolean {
    return this.episode !== undefined;
  }

  /** How long the SoC has been cool, ms (0 when it is not cool now). */
  coolFor(now: number): number {
    return this.coolSince === undefined ? 0 : now - this.coolSince;
  }

  state(): SocState {
    const l = this.last;
    if (!l || (l.sensors === 0 && l.throttle.throttled === undefined)) return { state: "unknown" };
    const h = l.hottest;
    return {
      state: l.hot ? "hot" : this.episode ? "cooling" : "ok",
      temperature_c: h ? +h.zone.tempC.toFixed(1) : undefined,
      zone: h?.zone.type,
      threshold_c: h ? +h.threshold.hotC.toFixed(1) : undefined,
      threshold_from: h?.threshold.from,
      throttled: l.throttle.throttled,
      throttle_reason: l.throttle.reason,
    };
  }
}
