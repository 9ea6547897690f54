/*
 * The supervisor's runner for one unit (../unit-runner.ts), for SPIN.
 *
 * Every change of state is a move of the generated table (unit-states.pml);
 * this file says when each happens: starts and the start limit, exits and
 * the restart policy, health checks (retries in a row; slow is not dead),
 * stops and restarts by request. The program the unit runs is the
 * environment: how it behaves decides what its process and its checks do.
 *
 * Time is abstract. One tick is about a minute: the start limit's interval,
 * the agent's outcome window, the detector's crash window. Backoff delays,
 * the stop timeout and the cooldown are shorter: whatever they delay happens
 * before the next tick. A unit gets at most CHECKS health checks a tick.
 *
 * A model including this file defines notify(ev), which tells the agent of
 * a change it would see in the supervisor's event stream.
 */

#include "unit-states.pml"

/* Numbers kept small: checking covers every count up to these. */
#define BURST 3          /* start_limit.burst */
#define RETRIES 2        /* health.retries */
#define CHECKS 2         /* health checks a tick */

/* What the unit's program does in one run. */
#define B_FINE 1         /* runs, passes its checks */
#define B_SLOW 2         /* alive and busy: a check may time out while it uses CPU */
#define B_HANGS 3        /* deadlocked or stopped: checks fail */
#define B_CRASHES 4      /* exits with a failure soon after it starts */
#define B_ONESHOT 5      /* exits with status 0 */
#define B_NOSPAWN 6      /* its program cannot be started at all */

/* Restart policies. */
#define P_ALWAYS 1
#define P_ON_FAILURE 2
#define P_NEVER 3

/* Why the running process is being stopped (stopIntent). MARK: stopped to be marked failed. */
#define I_NONE 0
#define I_STOP 1
#define I_RESTART 2
#define I_MARK 3

/* What the agent sees in the event stream (only what its detector looks at). */
#define EV_CRASH 1       /* a failed exit, restarted after the delay (to backoff) */
#define EV_FAILED 2      /* a failed exit the restart policy does not restart (to failed) */
#define EV_UNHEALTHY 3   /* retries checks in a row failed */
#define EV_START_FAILED 4 /* the unit went to failed at a start: the start limit, a missing user */

byte unit = U_INACTIVE;
byte unit_move;
byte policy;             /* restart policy */
bool has_check;          /* the unit has a health check */
byte run_b;              /* how the current run behaves */
byte hist;               /* starts within the start limit's interval */
byte failures;           /* failed checks in a row */
byte checks;             /* checks left this tick */
bool check_ok;           /* the last check passed */
byte intent;
bool timer;              /* a restart is scheduled (backoff) */
bool user_missing;       /* the unit's user does not exist */
bit clk;                 /* flips at every tick: time passes while it keeps flipping */
bool checks_gave_up;     /* for the properties: failed checks made the unit unhealthy (and restarted it) at least once */

#define has_process (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED || unit == U_UNHEALTHY || unit == U_STOPPING)
#define idle (unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
/* Healthy, as the agent judges a remedy: running and, with a check, passing it. */
#define healthy (unit == U_RUNNING && (!has_check || check_ok))

/* The behaviour of the next run: the profile's, or any for a flaky unit (pick_run is defined by the model). */

/* start(): a start by request (manual) clears the start limit. */
inline do_start(manual) {
  timer = 0;
  if
  :: manual -> hist = 0
  :: else -> skip
  fi;
  if
  :: hist >= BURST -> u_start_limit(); notify(EV_START_FAILED)
  :: else ->
     hist++;
     pick_run();
     if
     :: user_missing -> u_no_such_user(); notify(EV_START_FAILED)
     :: !user_missing && run_b == B_NOSPAWN -> after_exit(true)
     :: else ->
        failures = 0;
        check_ok = false;
        if
        :: has_check -> u_started_checked()
        :: else -> u_started()
        fi
     fi
  fi
}

/* adopt(): a restarted supervisor takes back the unit's running process. */
inline adopt() {
  pick_run();
  failures = 0;
  check_ok = false;
  u_adopted()
}

/* afterExit(): what the end of the process means, by the stop's intent or the restart policy. */
inline after_exit(failed) {
  timer = 0;
  if
  :: intent == I_STOP -> intent = I_NONE; u_stopped()
  :: intent == I_MARK -> intent = I_NONE; u_stopped(); u_marked_failed()
  :: intent == I_RESTART -> intent = I_NONE; u_stopped_for_restart(); timer = 1
  :: intent == I_NONE ->
     if
     :: policy == P_NEVER || (policy == P_ON_FAILURE && !failed) ->
        if
        :: failed -> u_exited_failed(); notify(EV_FAILED)
        :: else -> u_exited_clean()
        fi
     :: else ->
        u_exited();
        timer = 1;
        if
        :: failed -> notify(EV_CRASH)
        :: else -> skip
        fi
     fi
  fi
}

/* terminate(): sends the stop signal; the process ends later (exit_stopping). */
inline terminate(why) {
  intent = why;
  timer = 0;
  u_stopping()
}

/* One health check, with the verdict the unit's behaviour allows; slow is never a failure. */
inline health_check() {
  checks--;
  if
  :: run_b == B_FINE || run_b == B_CRASHES || run_b == B_SLOW ->
     failures = 0;
     check_ok = true;
     if
     :: unit != U_RUNNING -> u_check_passed()
     :: else -> skip
     fi
  :: run_b == B_SLOW ->
     check_ok = false;
     if
     :: unit != U_DEGRADED -> u_check_slow()
     :: else -> skip
     fi
  :: run_b == B_HANGS ->
     check_ok = false;
     failures++;
     if
     :: failures >= RETRIES ->
        u_checks_failed();
        checks_gave_up = true;
        notify(EV_UNHEALTHY);
        terminate(I_RESTART)
     :: else -> skip
     fi
  fi
}

/* Requests over the control socket, from a person or the agent. */

/* start by request: clears the start limit; a unit with a process is left alone. */
inline request_start() {
  if
  :: idle -> do_start(true)
  :: else -> skip
  fi
}

/* stop(): a process is stopped; a pending restart or a failed state ends in inactive. */
inline request_stop() {
  if
  :: has_process -> terminate(I_STOP)
  :: unit == U_BACKOFF || unit == U_FAILED -> timer = 0; u_stopped_idle()
  :: unit == U_INACTIVE -> skip
  fi
}

/* restart(): a unit without a process is started (clearing the start limit), one with a process stopped and started again. */
inline request_restart() {
  if
  :: idle -> do_start(true)
  :: else -> terminate(I_RESTART)
  fi
}

/* markFailed(): stopped, then failed until started by hand. */
inline request_mark_failed() {
  if
  :: has_process -> terminate(I_MARK)
  :: unit == U_BACKOFF || unit == U_FAILED -> timer = 0; u_stopped_idle(); u_marked_failed()
  :: unit == U_INACTIVE -> u_marked_failed()
  fi
}

/* A tick: time passes. Starts older than the interval leave the start limit's count (all, or none if they were recent). */
inline runner_tick() {
  clk = 1 - clk;
  checks = CHECKS;
  if
  :: hist = 0
  :: skip
  fi
}

/* What the runner and the unit's process may do next (one step of the environment). */
#define can_check (has_check && checks > 0 && (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED))
#define can_crash ((run_b == B_CRASHES || run_b == B_ONESHOT) && (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED))

/*
 * Whatever is due happens before the next tick: a due check, the crash of a
 * program that crashes soon after it starts, a scheduled restart, the end of
 * a process asked to stop. So a crash loop faster than the start limit's
 * interval has no tick in it.
 */
#define runner_settled (!can_check && !can_crash && !(unit == U_BACKOFF && timer) && unit != U_STOPPING)

inline runner_step() {
  if
  :: unit == U_BACKOFF && timer -> do_start(false)
  :: can_check -> health_check()
  :: can_crash -> after_exit(run_b == B_CRASHES)
  /* The stop signal (or, after stop.timeout, the kill of the cgroup) ends the process. */
  :: unit == U_STOPPING -> after_exit(true)
  fi
}
