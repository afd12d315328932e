# cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol> -P EmbedFile.cmake
# Writes a C file defining `const char NAME[]` with the file's bytes and a
# terminating NUL.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from ${IN}. Do not edit. */\nconst char ${NAME}[] = {\n    ${bytes}0x00};\n")
