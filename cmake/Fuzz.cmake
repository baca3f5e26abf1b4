# PSDM_FUZZ=ON: the libFuzzer targets of tests/fuzz/ (one per parser of outside bytes).
#
#   cmake -S . -B build-fuzz -DPSDM_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
#   cmake --build build-fuzz --target psdm_fuzz     # only the targets and the libraries they link
#
# Needs clang (libFuzzer is clang's): any other compiler stops the configuration here.
# Every library of ours then compiles with -fsanitize=fuzzer-no-link,address,undefined
# (through psdm_sanitizers, which they all link), so coverage and the sanitizers reach the
# real code; each target links with -fsanitize=fuzzer (tests/fuzz/CMakeLists.txt). assert()
# stays on in this build (-UNDEBUG), whatever the build type.
option(PSDM_FUZZ "Build the libFuzzer targets (tests/fuzz/); needs clang" OFF)

if(PSDM_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang" OR NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "PSDM_FUZZ=ON needs clang for both languages (libFuzzer is part of clang), but C is "
                        "'${CMAKE_C_COMPILER_ID}' (${CMAKE_C_COMPILER}) and C++ is '${CMAKE_CXX_COMPILER_ID}' "
                        "(${CMAKE_CXX_COMPILER}). Configure a fresh build directory with\n"
                        "  cmake -S . -B build-fuzz -DPSDM_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++\n"
                        "  (Debian packages: clang libclang-rt-14-dev; 'scripts/deps.sh fuzz' installs them)")
  endif()

  # libFuzzer and the sanitizer runtimes are in libclang-rt-14-dev, which clang only recommends.
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer,address,undefined")
  check_c_source_compiles("#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return n > 0 && d[0] == 1; }" PSDM_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  if(NOT PSDM_HAVE_LIBFUZZER)
    message(FATAL_ERROR "clang cannot link -fsanitize=fuzzer,address,undefined: install the Debian package "
                        "libclang-rt-14-dev (libFuzzer and the sanitizer runtimes), e.g. 'scripts/deps.sh fuzz' "
                        "as root, then delete ${CMAKE_BINARY_DIR}/CMakeCache.txt and configure again")
  endif()

  set(_psdm_fuzz_san -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                     -fno-omit-frame-pointer)
  target_compile_options(psdm_sanitizers INTERFACE ${_psdm_fuzz_san} -UNDEBUG)
  target_link_options(psdm_sanitizers INTERFACE ${_psdm_fuzz_san})
endif()
