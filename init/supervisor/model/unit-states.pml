/* Generated from init/supervisor/unit-states.ts by init/supervisor/model/generate.ts; do not edit.
   Change the table and run: bun init/supervisor/model/generate.ts */
/* The unit's state (unit) and the last move it made (unit_move). */
/* States. */
#define U_INACTIVE 1
#define U_STARTING 2
#define U_RUNNING 3
#define U_DEGRADED 4
#define U_UNHEALTHY 5
#define U_STOPPING 6
#define U_BACKOFF 7
#define U_FAILED 8

/* Moves, for the last move made (0: none yet). */
#define UM_START_LIMIT 1
#define UM_NO_SUCH_USER 2
#define UM_STARTED 3
#define UM_STARTED_CHECKED 4
#define UM_ADOPTED 5
#define UM_CHECK_PASSED 6
#define UM_CHECK_SLOW 7
#define UM_CHECKS_FAILED 8
#define UM_STOPPING 9
#define UM_STOPPED 10
#define UM_STOPPED_FOR_RESTART 11
#define UM_EXITED 12
#define UM_EXITED_FAILED 13
#define UM_EXITED_CLEAN 14
#define UM_STOPPED_IDLE 15
#define UM_MARKED_FAILED 16

/* start-limit: a start finds burst starts within the start limit's interval already (inactive, backoff, failed -> failed) */
#define can_u_start_limit (unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
inline u_start_limit() {
  assert(can_u_start_limit);
  unit = U_FAILED;
  unit_move = UM_START_LIMIT
}

/* no-such-user: the unit's user does not exist (inactive, backoff, failed -> failed) */
#define can_u_no_such_user (unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
inline u_no_such_user() {
  assert(can_u_no_such_user);
  unit = U_FAILED;
  unit_move = UM_NO_SUCH_USER
}

/* started: the process started and the unit has no health check (inactive, backoff, failed -> running) */
#define can_u_started (unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
inline u_started() {
  assert(can_u_started);
  unit = U_RUNNING;
  unit_move = UM_STARTED
}

/* started-checked: the process started; its health checks begin after the grace period (inactive, backoff, failed -> starting) */
#define can_u_started_checked (unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
inline u_started_checked() {
  assert(can_u_started_checked);
  unit = U_STARTING;
  unit_move = UM_STARTED_CHECKED
}

/* adopted: a restarted supervisor takes back a process an earlier one started (inactive -> running) */
#define can_u_adopted (unit == U_INACTIVE)
inline u_adopted() {
  assert(can_u_adopted);
  unit = U_RUNNING;
  unit_move = UM_ADOPTED
}

/* check-passed: a health check passes (starting, degraded -> running) */
#define can_u_check_passed (unit == U_STARTING || unit == U_DEGRADED)
inline u_check_passed() {
  assert(can_u_check_passed);
  unit = U_RUNNING;
  unit_move = UM_CHECK_PASSED
}

/* check-slow: a check times out while the unit uses CPU: slow, not dead (starting, running -> degraded) */
#define can_u_check_slow (unit == U_STARTING || unit == U_RUNNING)
inline u_check_slow() {
  assert(can_u_check_slow);
  unit = U_DEGRADED;
  unit_move = UM_CHECK_SLOW
}

/* checks-failed: retries checks in a row failed, or timed out with the unit stopped or idle (starting, running, degraded -> unhealthy) */
#define can_u_checks_failed (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED)
inline u_checks_failed() {
  assert(can_u_checks_failed);
  unit = U_UNHEALTHY;
  unit_move = UM_CHECKS_FAILED
}

/* stopping: a stop or restart sends the stop signal (an unhealthy unit is restarted so) (starting, running, degraded, unhealthy, stopping -> stopping) */
#define can_u_stopping (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED || unit == U_UNHEALTHY || unit == U_STOPPING)
inline u_stopping() {
  assert(can_u_stopping);
  unit = U_STOPPING;
  unit_move = UM_STOPPING
}

/* stopped: the process asked to stop has exited (stopping -> inactive) */
#define can_u_stopped (unit == U_STOPPING)
inline u_stopped() {
  assert(can_u_stopped);
  unit = U_INACTIVE;
  unit_move = UM_STOPPED
}

/* stopped-for-restart: the process asked to restart has exited; it starts again at once (stopping -> backoff) */
#define can_u_stopped_for_restart (unit == U_STOPPING)
inline u_stopped_for_restart() {
  assert(can_u_stopped_for_restart);
  unit = U_BACKOFF;
  unit_move = UM_STOPPED_FOR_RESTART
}

/* exited: the process exited and the restart policy restarts it after the delay (starting, running, degraded, inactive, backoff, failed -> backoff) */
#define can_u_exited (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED || unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
inline u_exited() {
  assert(can_u_exited);
  unit = U_BACKOFF;
  unit_move = UM_EXITED
}

/* exited-failed: the process failed and the restart policy does not restart it (starting, running, degraded, inactive, backoff, failed -> failed) */
#define can_u_exited_failed (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED || unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
inline u_exited_failed() {
  assert(can_u_exited_failed);
  unit = U_FAILED;
  unit_move = UM_EXITED_FAILED
}

/* exited-clean: the process exited with status 0 and the restart policy does not restart it (starting, running, degraded, inactive, backoff, failed -> inactive) */
#define can_u_exited_clean (unit == U_STARTING || unit == U_RUNNING || unit == U_DEGRADED || unit == U_INACTIVE || unit == U_BACKOFF || unit == U_FAILED)
inline u_exited_clean() {
  assert(can_u_exited_clean);
  unit = U_INACTIVE;
  unit_move = UM_EXITED_CLEAN
}

/* stopped-idle: a stop finds no process running (a pending restart is cancelled) (starting, backoff, failed -> inactive) */
#define can_u_stopped_idle (unit == U_STARTING || unit == U_BACKOFF || unit == U_FAILED)
inline u_stopped_idle() {
  assert(can_u_stopped_idle);
  unit = U_INACTIVE;
  unit_move = UM_STOPPED_IDLE
}

/* marked-failed: marked failed by request after it stopped; it stays failed until started by hand (inactive, failed -> failed) */
#define can_u_marked_failed (unit == U_INACTIVE || unit == U_FAILED)
inline u_marked_failed() {
  assert(can_u_marked_failed);
  unit = U_FAILED;
  unit_move = UM_MARKED_FAILED
}
