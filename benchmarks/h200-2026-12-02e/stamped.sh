#!/bin/bash
# `stamped.sh END_FILE COMMAND...`: runs the command, then writes the time it ended to END_FILE (run4.sh).
end=$1; shift; "$@"; rc=$?; date +%s.%N > "$end"; exit $rc
