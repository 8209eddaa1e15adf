# Every dependency comes from a Debian 12 package installed by cmake/install-deps.sh.

find_package(Threads REQUIRED)
# Boost 1.81 rather than Debian's default 1.74: Asio's as_tuple, awaitable
# operators and channels, and a coroutine header that builds under GCC 12.
find_package(Boost 1.81.0 EXACT REQUIRED CONFIG)
find_package(OpenSSL 3 REQUIRED)
find_package(fmt 9 REQUIRED CONFIG)
find_package(PkgConfig REQUIRED)
if(HAMAIL_BUILD_TESTS)
  pkg_check_modules(CPPUNIT REQUIRED IMPORTED_TARGET cppunit)
endif()
pkg_check_modules(TOMLPLUSPLUS REQUIRED IMPORTED_TARGET tomlplusplus)

# Asio as a header-only library with the settings every target shares.
add_library(hamail_asio INTERFACE)
target_link_libraries(hamail_asio INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(hamail_asio INTERFACE
  BOOST_ASIO_NO_DEPRECATED
  BOOST_ASIO_DISABLE_BOOST_COROUTINE)
