# Warnings for Tern's own targets. Generated and third-party code is included
# as SYSTEM and does not see these flags.
add_library(tern_warnings INTERFACE)
target_compile_options(tern_warnings INTERFACE
  -Wall -Wextra -Werror -Wpedantic -Wshadow=local -Wnon-virtual-dtor
  -Wno-missing-field-initializers
  # GCC 12 reports std::string concatenation at -O3 as overlapping memcpy
  # (GCC bug 105651, a false positive).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
