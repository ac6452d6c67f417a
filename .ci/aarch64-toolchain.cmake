# Cross-compiles for aarch64 Linux with Debian's g++-aarch64-linux-gnu (.ci/aarch64.sh).
# Python's headers and SOABI come from the arm64 interpreter that CMake runs under qemu-user
# (Python_EXECUTABLE), so only the compilers are set here.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
