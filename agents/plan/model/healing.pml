/*
 * The agent healing one unit that the supervisor runs, checked with SPIN
 * (tests/unit/healing-model.test.ts; docs/agent.md says how to run it).
 *
 * The supervisor's side is its runner (init/supervisor/model/runner.pml),
 * the agent's side is agents/agent/agent.ts and agents/analyze/detect.ts:
 * the detector's hysteresis (CRASH_LOOP crashes in a window, two unhealthy
 * verdicts), one incident per signature, the ladder climbed one rung per
 * failed remedy after the cooldown, rungs skipped where they cannot help, a
 * restart of a unit given up at its start limit only after start_limit_pause, a
 * remedy judged a fix only after a whole outcome window of health, the
 * guard that may only propose (per tool, as the policy and mode say), and
 * the hourly action limit (MAX_ACTIONS; the hour may end at any tick).
 * Incident states and ladders come from the tables (incident-states.pml).
 *
 * One profile is checked at a time (spin -D<profile>); each fixes how the
 * unit's program behaves:
 *   CRASHLOOP  it crashes soon after every start
 *   SLOW       it is alive, and busy: its checks pass or time out while it works
 *   HANGS      it is deadlocked: its checks fail
 *   FLAKY      it crashes soon, or runs healthy, at each start (a fix is possible)
 * The properties:
 *   incidents_end         while time passes, every incident ends: resolved,
 *                         failed, contained, or handed to a person;
 *   crash_loop_ends       (CRASHLOOP) the unit ends failed, whatever the
 *                         agent's restarts did to the start limit, where
 *                         the policy lets the agent mark it failed;
 *   slow_never_restarted  (SLOW) no restart, by the supervisor or the agent,
 *                         and no incident at all;
 *   no livelock           (pan -l) every cycle lets time pass: supervisor
 *                         restarts and agent remedies never chase each other
 *                         forever within one tick.
 */

chan events = [2] of { byte };
/* The event stream: an event that finds it full is lost (the agent's reconcile would find the failure at a later tick; the model does without). */
#define notify(ev) if :: nfull(events) -> events!ev :: full(events) -> skip fi

#include "../../../init/supervisor/model/runner.pml"
#include "incident-states.pml"

/* Incident slots, one per signature the unit's failures raise: its exits (crash), its health checks (hung, unhealthy). */
#define SIGS 2
#define S_EXITS 0
#define S_HEALTH 1
#define CRASH_LOOP 3     /* detector crashLoopCount */
#define UNHEALTHY_TWICE 2
#ifndef MAX_ACTIONS
#define MAX_ACTIONS 3    /* max_actions_per_hour, kept small */
#endif

/* Where an incident is between its remedies. */
#define P_NONE 0
#define P_JUDGING 1      /* a remedy was carried out; its outcome is judged at the ticks */
#define P_COOLING 2      /* the remedy failed; the next rung comes after the cooldown */
#define P_WAITING 3      /* a restart after the start limit waits start_limit_pause (under a tick) */

typedef Ladder { byte r[LADDER_MAX] }

byte behaviour;
bool mem_limit;          /* the unit has a memory limit (restart-with-limits can raise it) */
byte inc[SIGS];
byte inc_move[SIGS];
Ladder ladder[SIGS];
byte rungs[SIGS];
byte rung[SIGS];
byte phase[SIGS];
byte age[SIGS];          /* ticks since the remedy, up to 2 */
bool was_healthy[SIGS];  /* healthy at the last tick since the remedy */
bool restored[SIGS];     /* a remedy of the incident brought the unit back (healthy at a look) before the trouble returned */
byte crashes;            /* failed exits within the crash window */
byte unhealthies;        /* unhealthy verdicts within five minutes */
bool agent_acted;        /* the agent restarted or stopped the unit */
bool incidents_ended;    /* an incident has ended (its slot is cleared then) */
bool fixed_once;         /* an incident ended resolved: a remedy was judged a fix */
byte stale[SIGS];        /* events sent before incident k last ended: the trouble they show belongs to it */
bool waited;             /* while the tick carries out a step that waited: it waits no more */
bool may_restart;        /* the guard allows the agent to restart the unit (else it only proposes) */
bool may_mark;           /* the guard allows the agent to mark it failed */
byte actions;            /* actions on the unit within the hour */

#define B_FLAKY 7
inline pick_run() {
  if
  :: behaviour == B_FLAKY ->
     if
     :: run_b = B_FINE
     :: run_b = B_CRASHES
     fi
  :: else -> run_b = behaviour
  fi
}

#define working(k) (inc[k] == I_OPEN || inc[k] == I_HEALING)
/* The agent has caught up: no event waits, no rung waits for its cooldown. Time passes only then. */
#define agent_settled (empty(events) && phase[0] != P_COOLING && phase[1] != P_COOLING)
#define time_passes ([]<> clk && []<> !clk)

/* An action was taken: it counts towards max_actions_per_hour. */
inline count_action() {
  agent_acted = true;
  actions++
}

/* The remedy at the incident's rung: carried out, refused by the hourly limit, or only proposed. */
inline apply(k, r) {
  r = ladder[k].r[rung[k]];
  if
  :: r == R_MARK_FAILED && unit == U_FAILED -> i_gave_up(k)   /* already failed: it stays so until a person starts it */
  :: r == R_MARK_FAILED && unit != U_FAILED && restored[k] -> i_gave_up(k)   /* a remedy brought it back and the trouble returned: left running, to the supervisor (agent.ts SELF_ONLY: every class here) */
  :: r != R_MARK_FAILED || (unit != U_FAILED && !restored[k]) ->
     if
     :: actions >= MAX_ACTIONS -> i_gave_up(k)
     :: else ->
        if
        :: r == R_RESTART || r == R_RESTART_WITH_LIMITS ->
           if
           :: may_restart ->
              i_acted(k);
              count_action();
              request_restart();
              phase[k] = P_JUDGING;
              age[k] = 0;
              was_healthy[k] = false
           :: else -> i_proposed(k)
           fi
        :: r == R_MARK_FAILED ->
           if
           :: may_mark ->
              i_acted(k);
              count_action();
              request_mark_failed();
              i_marked_failed(k)
           :: else -> i_proposed(k)
           fi
        :: else -> assert(false)       /* a remedy this model does not know: say here what it does */
        fi
     fi
  fi
}

/* act(): the first rung that applies, from the incident's rung on. */
inline act(k, r) {
  phase[k] = P_NONE;
  do
  :: rung[k] >= rungs[k] -> i_gave_up(k); break     /* no remedy applies */
  :: rung[k] < rungs[k] && ladder[k].r[rung[k]] == R_RESTART && unit == U_FAILED && unit_move == UM_START_LIMIT && !waited && actions < MAX_ACTIONS ->
     phase[k] = P_WAITING; break                    /* the supervisor gave it up at its start limit: restart it after a pause, at the tick */
  :: rung[k] < rungs[k] && ladder[k].r[rung[k]] == R_RESTART_WITH_LIMITS && !mem_limit ->
     rung[k]++                                      /* skipped: no memory limit to raise */
  :: else -> apply(k, r); break
  od
}

inline remedy_failed(k) {
  phase[k] = P_COOLING;
  rung[k]++
}

/* handle(): a finding opens an incident for its signature, unless one is open or it shows trouble from before the last one ended. */
inline handle(k, cls, r) {
  if
  :: working(k) -> skip
  :: !working(k) && stale[k] > 0 -> skip
  :: else ->
     inc[k] = I_OPEN;
     inc_move[k] = 0;
     rung[k] = 0;
     if
     :: cls == C_CRASH -> order_crash(k)
     :: cls == C_HUNG -> order_hung(k)
     :: cls == C_UNHEALTHY -> order_unhealthy(k)
     fi;
     act(k, r)
  fi
}

/* An event from the supervisor: the detector counts it, a judged remedy that it shows failed is settled, a finding is handled. */
inline on_event(e, cls, r) {
  if
  :: e == EV_CRASH && crashes < CRASH_LOOP -> crashes++
  :: e == EV_UNHEALTHY && unhealthies < UNHEALTHY_TWICE -> unhealthies++
  :: else -> skip
  fi;
  /* The unit failed again after a remedy: that remedy failed (the start limit says so only to its own signature). */
  if
  :: phase[S_EXITS] == P_JUDGING -> remedy_failed(S_EXITS)
  :: else -> skip
  fi;
  if
  :: phase[S_HEALTH] == P_JUDGING && e != EV_START_FAILED -> remedy_failed(S_HEALTH)
  :: else -> skip
  fi;
  if
  :: (e == EV_CRASH && crashes >= CRASH_LOOP) || e == EV_FAILED || e == EV_START_FAILED -> cls = C_CRASH; handle(S_EXITS, cls, r)
  :: e == EV_UNHEALTHY && unhealthies >= UNHEALTHY_TWICE ->
     if
     :: cls = C_HUNG
     :: cls = C_UNHEALTHY
     fi;
     handle(S_HEALTH, cls, r)
  :: else -> skip
  fi
}

/* judgeOutcomes() at a tick: healthy for a whole window is a fix; not so within two windows, a failure. */
inline judge(k) {
  if
  :: phase[k] == P_JUDGING ->
     if
     :: age[k] < 2 -> age[k]++
     :: else -> skip
     fi;
     if
     :: healthy && was_healthy[k] -> phase[k] = P_NONE; i_fixed(k)
     :: healthy && !was_healthy[k] -> was_healthy[k] = true; restored[k] = true
     :: !healthy && age[k] >= 2 -> remedy_failed(k)
     :: !healthy && age[k] < 2 -> was_healthy[k] = false
     fi
  :: else -> skip
  fi
}

/* A tick for the agent: its windows move on (a count may still be within its window, or not), and remedies are judged. */
inline agent_tick(r) {
  if
  :: crashes = 0
  :: skip
  fi;
  if
  :: unhealthies = 0
  :: skip
  fi;
  if
  :: actions = 0
  :: skip
  fi;
  judge(S_EXITS);
  judge(S_HEALTH);
  /* Steps that waited for their time. */
  waited = true;
  if
  :: phase[S_EXITS] == P_WAITING -> act(S_EXITS, r)
  :: else -> skip
  fi;
  if
  :: phase[S_HEALTH] == P_WAITING -> act(S_HEALTH, r)
  :: else -> skip
  fi;
  waited = false;
  r = 0
}

/* What no longer matters is cleared, so that it does not tell states apart: an ended incident's slot, a judge's counters. */
inline tidy(k) {
  if
  :: !working(k) && inc[k] != 0 ->
     incidents_ended = true;
     stale[k] = len(events);
     fixed_once = fixed_once || inc[k] == I_RESOLVED;
     inc[k] = 0; inc_move[k] = 0; rung[k] = 0; rungs[k] = 0; phase[k] = P_NONE; restored[k] = false;
     ladder[k].r[0] = 0; ladder[k].r[1] = 0; ladder[k].r[2] = 0
  :: else -> skip
  fi;
  if
  :: phase[k] != P_JUDGING -> age[k] = 0; was_healthy[k] = false
  :: else -> skip
  fi
}

proctype agent() {
  byte e, cls, r;
  do
  /* The locals are cleared after each step, so that they do not tell states apart. */
  :: atomic {
       events?e ->
       on_event(e, cls, r);
       if :: stale[S_EXITS] > 0 -> stale[S_EXITS]-- :: else -> skip fi;
       if :: stale[S_HEALTH] > 0 -> stale[S_HEALTH]-- :: else -> skip fi;
       e = 0; cls = 0; r = 0;
       tidy(S_EXITS);
       tidy(S_HEALTH)
     }
  :: atomic { phase[S_EXITS] == P_COOLING -> act(S_EXITS, r); r = 0; tidy(S_EXITS) }
  :: atomic { phase[S_HEALTH] == P_COOLING -> act(S_HEALTH, r); r = 0; tidy(S_HEALTH) }
  od
}

#ifdef CRASHLOOP
/* Only where the agent may mark the unit failed: where the policy has it only propose that, the next start limit opens a new incident, whose restart clears the start limit again (max_actions_per_hour bounds it). */
ltl crash_loop_ends { [] (may_mark -> <>[] (unit == U_FAILED)) }
#endif
#ifdef SLOW
ltl slow_never_restarted { [] (!agent_acted && !checks_gave_up && unit_move != UM_EXITED && unit_move != UM_EXITED_FAILED && inc[S_EXITS] == 0 && inc[S_HEALTH] == 0 && !incidents_ended) }
#endif
ltl incidents_end { time_passes -> [] ((working(S_EXITS) -> <> !working(S_EXITS)) && (working(S_HEALTH) -> <> !working(S_HEALTH))) }

init {
  byte r;
  atomic {
#if defined(CRASHLOOP)
    behaviour = B_CRASHES;
#elif defined(SLOW)
    behaviour = B_SLOW;
#elif defined(HANGS)
    behaviour = B_HANGS;
#else
    behaviour = B_FLAKY;
#endif
    if
    :: policy = P_ALWAYS
    :: policy = P_NEVER
    fi;
    if
    :: has_check = true
    :: behaviour != B_SLOW && behaviour != B_HANGS -> has_check = false
    fi;
    if
    :: mem_limit = true
    :: mem_limit = false
    fi;
    /* The policy and the agent's mode decide, for each tool, whether it acts or proposes. */
    if
    :: may_restart = true
    :: may_restart = false
    fi;
    if
    :: may_mark = true
    :: may_mark = false
    fi;
    do_start(false);
    run agent()
  }
  do
  :: atomic { runner_step() }
  /* Time passes (progress, for pan -l: a cycle without a tick is a livelock). */
  :: atomic { runner_settled && agent_settled -> runner_tick(); agent_tick(r); tidy(S_EXITS); tidy(S_HEALTH) };
progress_time:
     skip
  od
}
