# Warnings live in an INTERFACE target that our own targets link; -Werror only when asked (CI).
add_library(project_warnings INTERFACE)
target_compile_options(project_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wconversion -Wsign-conversion -Wformat=2
  -Wimplicit-fallthrough
  $<$<BOOL:${OUTBOX_WERROR}>:-Werror>)
