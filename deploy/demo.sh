#!/bin/sh
# README command 1: install the dependencies, build, and run the main job on
# the embedded default interface. Until the CSC itself lands this prints the
# SAL interface the build was generated from (topics, DDS and Kafka names,
# revCodes) and the fields of the OCPS-specific topics.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
"$here/build.sh" "$top/build"
"$top/build/csc/sal-info"
echo
"$top/build/csc/sal-info" command_execute command_abort_job logevent_job_id logevent_job_result
