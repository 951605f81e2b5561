# cmake -DIN=<binary> -DOUT=<c file> -DNAME=<symbol> -P embed.cmake
# Writes the bytes of IN as `const unsigned char NAME[]` and `const unsigned long NAME_size`.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" body "${body}")
file(WRITE "${OUT}" "/* generated from ${IN} */\n__attribute__((aligned(16))) const unsigned char ${NAME}[] = {\n${body}\n};\nconst unsigned long ${NAME}_size = ${bytes};\n")
