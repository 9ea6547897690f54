/*
 * The supervisor alone with one unit, checked with SPIN
 * (tests/unit/healing-model.test.ts; docs/units.md says how to run it).
 *
 * The unit's restart policy, its health check, a missing user, adoption at
 * boot and the program's behaviour are chosen at the start, every way; a
 * person may send up to REQUESTS requests (start, stop, restart, mark
 * failed) at any moment. The properties:
 *   crash_loop_ends       a unit that crashes faster than the start limit's
 *                         interval comes to rest (failed, or stopped by the
 *                         person): the start limit always ends a crash loop;
 *   slow_never_restarted  a slow unit is never made unhealthy, and its
 *                         process never ends unless a person asks;
 *   hung_is_restarted     a hung unit with a health check is always stopped
 *                         and restarted while time passes.
 * Each move asserts that the table allows it from the unit's state.
 */

#define notify(ev) skip
#include "runner.pml"

#define REQUESTS 2
/* Besides one behaviour for every run, a flaky unit behaves any way at each start. */
#define B_FLAKY 7

byte behaviour;
byte requests = REQUESTS;

inline pick_run() {
  if
  :: behaviour == B_FLAKY ->
     if
     :: run_b = B_FINE
     :: run_b = B_SLOW
     :: run_b = B_HANGS
     :: run_b = B_CRASHES
     :: run_b = B_ONESHOT
     :: run_b = B_NOSPAWN
     fi
  :: else -> run_b = behaviour
  fi
}

#define at_rest (unit == U_FAILED || unit == U_INACTIVE)
#define time_passes ([]<> clk && []<> !clk)

ltl crash_loop_ends { [] (behaviour == B_CRASHES -> <>[] at_rest) }
ltl slow_never_restarted { [] (behaviour == B_SLOW -> (!checks_gave_up && unit_move != UM_EXITED && unit_move != UM_EXITED_FAILED)) }
ltl hung_is_restarted { time_passes -> [] ((behaviour == B_HANGS && has_check && (unit == U_STARTING || unit == U_RUNNING)) -> <> (unit == U_STOPPING)) }

init {
  atomic {
    if
    :: behaviour = B_FINE
    :: behaviour = B_SLOW
    :: behaviour = B_HANGS
    :: behaviour = B_CRASHES
    :: behaviour = B_ONESHOT
    :: behaviour = B_NOSPAWN
    :: behaviour = B_FLAKY
    fi;
    if
    :: policy = P_ALWAYS
    :: policy = P_ON_FAILURE
    :: policy = P_NEVER
    fi;
    if
    :: has_check = true
    :: has_check = false
    fi;
    if
    :: user_missing = true
    :: user_missing = false
    fi;
    /* At boot the unit is started, or adopted from an earlier supervisor. */
    if
    :: do_start(false)
    :: !user_missing && behaviour != B_NOSPAWN -> adopt()
    fi
  }
  do
  :: atomic { runner_step() }
  :: atomic { runner_settled -> runner_tick() }
  :: atomic { requests > 0 -> requests--; request_start() }
  :: atomic { requests > 0 -> requests--; request_stop() }
  :: atomic { requests > 0 -> requests--; request_restart() }
  :: atomic { requests > 0 -> requests--; request_mark_failed() }
  od
}
