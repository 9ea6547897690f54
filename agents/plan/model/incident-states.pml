/* Generated from agents/plan/incident-states.ts and agents/plan/ladder.ts by agents/plan/model/generate.ts; do not edit.
   Change the table and run: bun agents/plan/model/generate.ts */

/* Incident k's state (inc[k]; 0: none yet) and the last move made on it (inc_move[k]). */
/* States. */
#define I_OPEN 1
#define I_HEALING 2
#define I_RESOLVED 3
#define I_FAILED 4
#define I_PROPOSED 5
#define I_CONTAINED 6

/* Moves, for the last move made (0: none yet). */
#define IM_RECORDED 1
#define IM_ACTED 2
#define IM_PROPOSED 3
#define IM_GAVE_UP 4
#define IM_CONTAINED 5
#define IM_MARKED_FAILED 6
#define IM_QUARANTINED 7
#define IM_FIXED 8
#define IM_RECOVERED 9

/* recorded: the trouble is only recorded and explained (an anomaly), never healed (open -> resolved) */
#define can_i_recorded(k) (inc[k] == I_OPEN)
inline i_recorded(k) {
  assert(can_i_recorded(k));
  inc[k] = I_RESOLVED;
  inc_move[k] = IM_RECORDED
}

/* acted: a remedy was carried out; its outcome is judged later (open, healing -> healing) */
#define can_i_acted(k) (inc[k] == I_OPEN || inc[k] == I_HEALING)
inline i_acted(k) {
  assert(can_i_acted(k));
  inc[k] = I_HEALING;
  inc_move[k] = IM_ACTED
}

/* proposed: the guard lets the agent only propose the remedy, or the last rung is telling a person (open, healing -> proposed) */
#define can_i_proposed(k) (inc[k] == I_OPEN || inc[k] == I_HEALING)
inline i_proposed(k) {
  assert(can_i_proposed(k));
  inc[k] = I_PROPOSED;
  inc_move[k] = IM_PROPOSED
}

/* gave-up: nothing more to try: the rate limit, a unit already failed, no rung left, a remedy that could not be carried out (open, healing -> failed) */
#define can_i_gave_up(k) (inc[k] == I_OPEN || inc[k] == I_HEALING)
inline i_gave_up(k) {
  assert(can_i_gave_up(k));
  inc[k] = I_FAILED;
  inc_move[k] = IM_GAVE_UP
}

/* contained: a unit was frozen: hidden, not fixed; a person must look (open, healing -> contained) */
#define can_i_contained(k) (inc[k] == I_OPEN || inc[k] == I_HEALING)
inline i_contained(k) {
  assert(can_i_contained(k));
  inc[k] = I_CONTAINED;
  inc_move[k] = IM_CONTAINED
}

/* marked-failed: the last rung stopped the unit and marked it failed (open, healing -> failed) */
#define can_i_marked_failed(k) (inc[k] == I_OPEN || inc[k] == I_HEALING)
inline i_marked_failed(k) {
  assert(can_i_marked_failed(k));
  inc[k] = I_FAILED;
  inc_move[k] = IM_MARKED_FAILED
}

/* quarantined: a process outside every unit was contained: nothing of the device's own is broken (open, healing -> resolved) */
#define can_i_quarantined(k) (inc[k] == I_OPEN || inc[k] == I_HEALING)
inline i_quarantined(k) {
  assert(can_i_quarantined(k));
  inc[k] = I_RESOLVED;
  inc_move[k] = IM_QUARANTINED
}

/* fixed: the unit was healthy for the whole outcome window after the remedy (healing -> resolved) */
#define can_i_fixed(k) (inc[k] == I_HEALING)
inline i_fixed(k) {
  assert(can_i_fixed(k));
  inc[k] = I_RESOLVED;
  inc_move[k] = IM_FIXED
}

/* recovered: the network or the SoC recovered (the remedy being judged, if any, is credited) (open, healing, proposed -> resolved) */
#define can_i_recovered(k) (inc[k] == I_OPEN || inc[k] == I_HEALING || inc[k] == I_PROPOSED)
inline i_recovered(k) {
  assert(can_i_recovered(k));
  inc[k] = I_RESOLVED;
  inc_move[k] = IM_RECOVERED
}

/* Remedies of the ladders below. */
#define R_RESTART 1
#define R_RESTART_WITH_LIMITS 2
#define R_MARK_FAILED 3

/* The longest ladder: incident k's remedies, in the order it tries them, are ladder[k].r[0 .. LADDER_MAX-1]. */
#define LADDER_MAX 3
#define C_CRASH 1
#define C_HUNG 2
#define C_UNHEALTHY 3

/* crash: restart -> restart-with-limits -> mark-failed; learning may reorder all but a final rung that tells or gives up. */
#define LEN_CRASH 3
inline order_crash(k) {
  if
  :: ladder[k].r[0] = R_RESTART; ladder[k].r[1] = R_RESTART_WITH_LIMITS; ladder[k].r[2] = R_MARK_FAILED
  :: ladder[k].r[0] = R_RESTART_WITH_LIMITS; ladder[k].r[1] = R_RESTART; ladder[k].r[2] = R_MARK_FAILED
  fi;
  rungs[k] = LEN_CRASH
}

/* hung: restart -> restart-with-limits -> mark-failed; learning may reorder all but a final rung that tells or gives up. */
#define LEN_HUNG 3
inline order_hung(k) {
  if
  :: ladder[k].r[0] = R_RESTART; ladder[k].r[1] = R_RESTART_WITH_LIMITS; ladder[k].r[2] = R_MARK_FAILED
  :: ladder[k].r[0] = R_RESTART_WITH_LIMITS; ladder[k].r[1] = R_RESTART; ladder[k].r[2] = R_MARK_FAILED
  fi;
  rungs[k] = LEN_HUNG
}

/* unhealthy: restart -> restart-with-limits -> mark-failed; learning may reorder all but a final rung that tells or gives up. */
#define LEN_UNHEALTHY 3
inline order_unhealthy(k) {
  if
  :: ladder[k].r[0] = R_RESTART; ladder[k].r[1] = R_RESTART_WITH_LIMITS; ladder[k].r[2] = R_MARK_FAILED
  :: ladder[k].r[0] = R_RESTART_WITH_LIMITS; ladder[k].r[1] = R_RESTART; ladder[k].r[2] = R_MARK_FAILED
  fi;
  rungs[k] = LEN_UNHEALTHY
}
