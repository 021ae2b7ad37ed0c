# Cross-compiling the core for aarch64 Linux with Debian's cross toolchain:
#   apt-get install -y g++-aarch64-linux-gnu qemu-user
#   cmake -S cpp -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=$PWD/cpp/cmake/aarch64-linux-gnu.cmake \
#         -DSYNCTALK_BUILD_CPP_TESTS=ON
#   cmake --build build-aarch64 -j2 && ctest --test-dir build-aarch64
# ctest runs core_selftest under qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR);
# tools/aarch64_selftest.sh does all of this and requires the NEON lanes.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)  # cpp/CMakeLists.txt compiles the NEON lanes for it

set(_synctalk_triple aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${_synctalk_triple}-gcc)
set(CMAKE_CXX_COMPILER ${_synctalk_triple}-g++)

# Headers and libraries from the cross sysroot only; programs from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${_synctalk_triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The aarch64 programs run on an x86-64 host with user-mode QEMU, loading
# the dynamic linker and libraries from the cross sysroot.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/${_synctalk_triple})
