# psdm_warnings: the warning set every target of ours compiles with.
# Warnings are errors: a warning is either a bug or noise worth silencing at its source.
add_library(psdm_warnings INTERFACE)
target_compile_options(psdm_warnings INTERFACE
  -Wall -Wextra
  -Werror
  -Wshadow                 # a shadowed name is a bug waiting to happen
  -Wformat=2               # format-string security
  -Wnull-dereference
  -Wundef
  -Wpointer-arith
  $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Woverloaded-virtual -Wold-style-cast>
  $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes -Wmissing-prototypes>
)
