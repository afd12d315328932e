# cmake -DIN=sal_revCoded_X.idl -DOUT=X.idl -P keylist_to_key.cmake
# Rubin's IDL marks the key with OpenSplice's `#pragma keylist <struct>
# salIndex`, which fastddsgen does not read: drop those lines and mark the
# salIndex member @key instead (IDL4), the same key on the wire. Keyless
# structs (`#pragma keylist <struct>` alone) have no salIndex and are kept
# as they are (fastddsgen ignores the pragma).
file(READ "${IN}" idl)
string(REGEX REPLACE "\n#pragma keylist [A-Za-z0-9_]+ salIndex[^\n]*" "" idl "${idl}")
string(REGEX REPLACE "\n([ \t]*)long([ \t]+)salIndex;" "\n\\1@key long\\2salIndex;" idl "${idl}")
file(WRITE "${OUT}" "${idl}")
