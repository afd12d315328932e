#!/bin/bash
# check_ts_sal.sh: run ts_sal's own Tcl generator (bin/salgenerator, "validate" then
# "sal idl") WITHOUT OpenSplice, and compare its DDS output byte for byte with
# ocps-c's idl/salgen.py (or with a directory of vectors): an independent check
# of salgen's ts_sal 7 rules on any component of any ts_xml release
# (docs/interface.md). Needs git, tclsh (Debian's tcl), perl, python3; not run
# by the test suite (it needs ts_sal's and ts_xml's repositories).
#
# Usage:
#   SAL_MIRROR=TS_SAL_GIT XML_MIRROR=TS_XML_GIT idl/check_ts_sal.sh
#                    [-s SAL_TAG] [-x XML_TAG | -d XML_DIR -v XML_VERSION]
#                    [-o OCPS_REPO] [-r OCPS_REV] [-V VECTOR_DIR] [-w WORK] [-k]
#                    COMPONENT... | all
#
#   SAL_MIRROR, XML_MIRROR: the git directories (a clone's .git, or a bare
#   repository) of lsst-ts/ts_sal and lsst-ts/ts_xml; only read (git archive).
#
#   -s  ts_sal tag to extract from the ts_sal mirror            (default v7.4.1)
#   -x  ts_xml tag to extract from the ts_xml mirror            (default v20.3.0)
#   -d  use this directory in ts_xml layout instead of -x (SALSubsystems.xml,
#       SALGenerics.xml, <C>/<C>_*.xml);
#       -v gives its version label (e.g. 12.0.0)
#   -o  ocps-c git repository (default: this script's; only read, with git archive)
#   -r  ocps-c revision whose idl/salgen*.py is used            (default HEAD)
#   -V  compare with vectors made by Rubin's generator instead of salgen:
#       VECTOR_DIR/sal_revCoded_<C>.idl, <C>_revCodes.txt, validated/<C>_*.idl
#   -w  work directory, created if needed  (default: a new temporary one); everything
#       written goes there, plus ts_sal's own fixed /tmp/subsys.tmp and
#       /tmp/salgenerics_<C>, which are removed after each run
#   -k  keep going quietly: no per-topic diff on stdout (diffs are still saved)
#   all = every component directory of the ts_xml tree (a directory without XML,
#   e.g. ATHeaderService in 20.3.0, is a generics-only component for both).
#
# What ts_sal needs and what is stubbed (ts_sal 7.4.1):
#   * env SAL_DIR (lsstsal/scripts), SAL_WORK_DIR (must exist, writable),
#     TS_SAL_DIR and TS_XML_DIR: both must be git work trees, since salgenerator
#     and sal_version.tcl run "git describe --tags --dirty" there for
#     XML_VERSION / SAL_VERSION; the extracted trees get "git init" + one commit
#     + the tag. ts_xml releases before 20 keep sal_interfaces/ at the top; the
#     tree is rearranged to python/lsst/ts/xml/data/sal_interfaces/, where
#     ts_sal 7.4.1 reads it.
#   * OSPL_HOME and OSPL_RELEASE: only read into variables (ospl_version.tcl
#     builds the idlpp command line but validate / sal idl never run it), so
#     any value does; no OpenSplice, no idlpp, no stub program.
#   * perl (processgenerics.tcl substitutes SALGeneric/SALVersion with perl -pi),
#     md5sum, grep, mkdir: ordinary Debian tools.
# ts_sal writes the revCodes as idl-templates/validated/<C>_revCodes.tcl
# ("set REVCODE(<C>_<topic>) <8 hex>", lsort order of the file names); the script
# turns that into "<topic> <revCode>" lines, the format of salgen's
# dds/<C>_revCodes.txt, before comparing.
#
# Output: one summary line per component on stdout, and under
#   WORK/res/<xml version>/<C>/: tssal.log, salgen.log, diff-idl.txt,
#   diff-revcodes.txt, diff-validated.txt (only when different), topics.txt
# Exit status: 0 all identical, 1 some difference or failure, 2 usage.

set -uo pipefail

SAL_TAG=v7.4.1 XML_TAG=v20.3.0 XML_DIR= XML_VER= OCPS_REPO=$(cd "$(dirname "$0")/.." && pwd) OCPS_REV=HEAD
VEC= WORK= QUIET=0
while getopts s:x:d:v:o:r:V:w:k opt; do
  case $opt in
  s) SAL_TAG=$OPTARG ;; x) XML_TAG=$OPTARG ;; d) XML_DIR=$OPTARG ;; v) XML_VER=$OPTARG ;;
  o) OCPS_REPO=$OPTARG ;; r) OCPS_REV=$OPTARG ;; V) VEC=$OPTARG ;; w) WORK=$OPTARG ;;
  k) QUIET=1 ;; *) sed -n '2,33p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || { sed -n '2,33p' "$0" >&2; exit 2; }
[[ -n ${SAL_MIRROR:-} ]] || { echo "set SAL_MIRROR to the git directory of ts_sal" >&2; exit 2; }
if [[ -n $XML_DIR ]]; then
  [[ -n $XML_VER ]] || { echo "-d needs -v XML_VERSION" >&2; exit 2; }
else
  [[ -n ${XML_MIRROR:-} ]] || { echo "set XML_MIRROR to the git directory of ts_xml, or use -d" >&2; exit 2; }
  XML_VER=${XML_TAG#v}
fi
[[ -n $WORK ]] || WORK=$(mktemp -d) || exit 2
mkdir -p "$WORK" || exit 2
WORK=$(cd "$WORK" && pwd)
echo "work directory: $WORK" >&2
# ts_sal writes fixed files (/tmp/subsys.tmp, /tmp/salgenerics_<C>): one run at a time
exec 9>"${TMPDIR:-/tmp}/check_ts_sal.lock"
flock 9 || exit 2
gitq() { git -c user.name=tssal -c user.email=tssal@localhost -c init.defaultBranch=main "$@"; }

# 1. ts_sal at SAL_TAG, made a git work tree tagged SAL_TAG.
SAL=$WORK/ts_sal-$SAL_TAG
if [[ ! -f $SAL/.ready ]]; then
  rm -rf "$SAL" && mkdir -p "$SAL"
  git --git-dir="$SAL_MIRROR" archive "$SAL_TAG" | tar -x -C "$SAL" || exit 2
  (cd "$SAL" && gitq init -q && gitq add -A && gitq commit -qm "ts_sal $SAL_TAG" && gitq tag "$SAL_TAG") || exit 2
  echo .ready >>"$SAL/.git/info/exclude" && touch "$SAL/.ready"
fi

# 2. ts_xml tree in the layout ts_sal reads, a git work tree tagged v<XML_VER>.
TSXML=$WORK/ts_xml-$XML_VER
SI=$TSXML/python/lsst/ts/xml/data/sal_interfaces
if [[ ! -f $TSXML/.ready ]]; then
  rm -rf "$TSXML" && mkdir -p "$TSXML"
  if [[ -n $XML_DIR ]]; then
    mkdir -p "$SI" && cp -r "$XML_DIR"/. "$SI"/ && chmod -R u+w "$TSXML"
  else
    git --git-dir="$XML_MIRROR" archive "$XML_TAG" | tar -x -C "$TSXML" || exit 2
    if [[ ! -d $SI ]]; then
      mkdir -p "$(dirname "$SI")" && mv "$TSXML/sal_interfaces" "$SI" || exit 2
    fi
  fi
  (cd "$TSXML" && gitq init -q && gitq add -A && gitq commit -qm "ts_xml $XML_VER" && gitq tag "v$XML_VER") || exit 2
  echo .ready >>"$TSXML/.git/info/exclude" && touch "$TSXML/.ready"
fi

# 3. ocps-c's salgen at OCPS_REV (read with git archive; nothing written in the repo).
if [[ -z $VEC ]]; then
  OC=$WORK/ocps-$(git -C "$OCPS_REPO" rev-parse --short "$OCPS_REV") || exit 2
  if [[ ! -f $OC/idl/salgen.py ]]; then
    mkdir -p "$OC" && git -C "$OCPS_REPO" archive "$OCPS_REV" idl | tar -x -C "$OC" || exit 2
  fi
fi

if [[ $1 == all ]]; then
  set -- $(cd "$SI" && for d in */; do echo "${d%/}"; done)
fi

status=0
ntopics=0 nsame=0 ndiff=0 nmiss=0 nextra=0 ncomp=0 ncompsame=0
for C in "$@"; do
  R=$WORK/res/$XML_VER/$C
  rm -rf "$R" && mkdir -p "$R/work" "$R/ocps"
  ncomp=$((ncomp + 1))
  # 4. ts_sal: validate (per-topic IDL, revCodes) then sal idl (sal_revCoded_<C>.idl).
  (
    cd "$R/work" || exit 1
    export SAL_DIR=$SAL/lsstsal/scripts TS_SAL_DIR=$SAL SAL_WORK_DIR=$R/work TS_XML_DIR=$TSXML \
      OSPL_HOME=/nonexistent/OpenSpliceDDS/V6.10.4/HDE/x86_64.linux OSPL_RELEASE=stub
    export PATH=$SAL/bin:$SAL_DIR:$PATH
    nice tclsh "$SAL/bin/salgenerator" "$C" validate && nice tclsh "$SAL/bin/salgenerator" "$C" sal idl
  ) >"$R/tssal.log" 2>&1
  rc=$?
  rm -f "/tmp/salgenerics_$C" /tmp/subsys.tmp
  T=$R/work/idl-templates/validated
  if [[ $rc -ne 0 || ! -s $R/work/$C/sal_revCoded_$C.idl ]]; then
    echo "$C: TSSAL-FAIL rc=$rc: $(grep -m1 -i 'error' "$R/tssal.log" || tail -1 "$R/tssal.log")"
    status=1
    continue
  fi
  sed -n "s/^set REVCODE(${C}_\(.*\)) \(.*\)\$/\1 \2/p" "$T/${C}_revCodes.tcl" >"$R/tssal_revCodes.txt"
  # 5. the reference: salgen (or vectors).
  if [[ -n $VEC ]]; then
    O=$VEC
    [[ -f $O/sal_revCoded_$C.idl ]] || { echo "$C: no vector"; status=1; continue; }
  else
    O=$R/ocps/dds
    if ! nice python3 "$OC/idl/salgen.py" --xml-dir "$SI" --component "$C" --xml-version "$XML_VER" \
      --sal-version "${SAL_TAG#v}" --out "$R/ocps" --no-c >"$R/salgen.log" 2>&1; then
      echo "$C: SALGEN-FAIL: $(tail -1 "$R/salgen.log")"
      status=1
      continue
    fi
  fi
  # 6. compare.
  idl=same rev=same
  diff -u "$O/sal_revCoded_$C.idl" "$R/work/$C/sal_revCoded_$C.idl" >"$R/diff-idl.txt" || idl=DIFF
  diff -u "$O/${C}_revCodes.txt" "$R/tssal_revCodes.txt" >"$R/diff-revcodes.txt" || rev=DIFF
  same=0 dif=0 miss=0 extra=0
  : >"$R/diff-validated.txt"
  : >"$R/topics.txt"
  for f in "$T/${C}"_*.idl; do
    b=$(basename "$f")
    t=${b#"${C}_"}; t=${t%.idl}
    if [[ ! -f $O/validated/$b ]]; then
      extra=$((extra + 1)); echo "$t only-in-tssal" >>"$R/topics.txt"
    elif cmp -s "$f" "$O/validated/$b"; then
      same=$((same + 1)); echo "$t same" >>"$R/topics.txt"
    else
      dif=$((dif + 1)); echo "$t DIFF" >>"$R/topics.txt"
      diff -u "$O/validated/$b" "$f" >>"$R/diff-validated.txt"
    fi
  done
  for f in "$O/validated/${C}"_*.idl; do
    [[ -f $f ]] || continue
    b=$(basename "$f")
    [[ -f $T/$b ]] || { miss=$((miss + 1)); echo "${b#"${C}_"} only-in-reference" >>"$R/topics.txt"; }
  done
  for x in idl revcodes validated; do [[ -s $R/diff-$x.txt ]] || rm -f "$R/diff-$x.txt"; done
  n=$((same + dif + extra))
  ntopics=$((ntopics + n)) nsame=$((nsame + same)) ndiff=$((ndiff + dif)) nmiss=$((nmiss + miss)) nextra=$((nextra + extra))
  echo "$C: topics=$n revCoded-idl=$idl revCodes=$rev validated: same=$same diff=$dif only-tssal=$extra only-ref=$miss"
  if [[ $idl == same && $rev == same && $dif -eq 0 && $extra -eq 0 && $miss -eq 0 ]]; then
    ncompsame=$((ncompsame + 1))
  else
    status=1
    if [[ $QUIET -eq 0 ]]; then cat "$R"/diff-*.txt 2>/dev/null; fi
  fi
done
echo "TOTAL xml=$XML_VER sal=$SAL_TAG components=$ncomp identical=$ncompsame topics=$ntopics same=$nsame diff=$ndiff only-tssal=$nextra only-ref=$nmiss"
exit $status
