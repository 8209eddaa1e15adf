# Build options and the warning set every hamail target gets.

option(HAMAIL_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(HAMAIL_BUILD_TESTS "Build unit and integration tests" ON)

# Project code is warning-free; third-party headers are included as SYSTEM so
# their warnings do not break the build.
# -Wno-mismatched-new-delete: at -O2 GCC 12 wrongly reports Asio's coroutine-frame operator
# delete as mismatched with its operator new (GCC bug 109224); the pair is Asio's own.
add_library(hamail_warnings INTERFACE)
target_compile_options(hamail_warnings INTERFACE
  -Wall -Wextra -Werror -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
  $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete> -Wnon-virtual-dtor
  -Wno-missing-field-initializers)

if(HAMAIL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
