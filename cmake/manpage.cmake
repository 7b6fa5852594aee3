# Writes the clopt(1) man page from the built program's own --help and --version, so the
# page and the program never disagree.
# Usage: cmake -DCLOPT=path/to/clopt -DOUT=clopt.1 -P manpage.cmake
execute_process(COMMAND "${CLOPT}" --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clopt --help failed (${rc})")
endif()
execute_process(COMMAND "${CLOPT}" --version OUTPUT_VARIABLE version
                OUTPUT_STRIP_TRAILING_WHITESPACE)
# troff: a backslash is written \e, and a line starting with . or ' would be a request.
macro(escape_troff var)
  string(REPLACE "\\" "\\e" ${var} "${${var}}")
  string(REGEX REPLACE "\n([.'])" "\n\\\\&\\1" ${var} "${${var}}")
endmacro()
escape_troff(help)
# Then each command's own help, as `clopt help COMMAND` prints it.
set(commands "")
foreach(command devices objectives run check tune bench checkpoint)
  execute_process(COMMAND "${CLOPT}" help ${command} OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "clopt help ${command} failed (${rc})")
  endif()
  escape_troff(text)
  string(APPEND commands ".SS ${command}\n.nf\n${text}.fi\n")
endforeach()
string(TIMESTAMP today "%Y-%m-%d" UTC)
file(WRITE "${OUT}.tmp"
  ".TH CLOPT 1 \"${today}\" \"${version}\" \"User Commands\"\n"
  ".SH NAME\nclopt \\- gradient-based minimisation on OpenCL devices\n"
  ".SH SYNOPSIS\n.B clopt\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n"
  ".SH DESCRIPTION\n.nf\n${help}.fi\n"
  ".SH COMMANDS\n${commands}"
  ".SH SEE ALSO\n.BR clinfo (1)\n")
file(RENAME "${OUT}.tmp" "${OUT}")
