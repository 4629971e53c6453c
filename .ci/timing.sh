# Sourced by the .ci scripts: `stage NAME CMD...` runs CMD and prints its wall time, also
# when it fails (the script then stops with CMD's status).
stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== [$name] start" >&2
  local rc=0
  "$@" || rc=$?
  echo "=== [$name] $((SECONDS - t0)) s$([ $rc -ne 0 ] && echo " — FAILED (exit $rc)")" >&2
  return $rc
}
