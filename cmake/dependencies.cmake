# Every dependency comes from a Debian package; nothing is downloaded at configure time.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)              # header-only parts: Asio, Beast, Multiprecision
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(prometheus-cpp REQUIRED)          # core only: we serve /metrics ourselves
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(SECP256K1 REQUIRED IMPORTED_TARGET libsecp256k1)
pkg_check_modules(CRYPTOPP REQUIRED IMPORTED_TARGET libcrypto++)
# gRPC for wallet-service: protobuf-compiler, protobuf-compiler-grpc, libgrpc++-dev, libprotobuf-dev.
find_package(Protobuf 3.12 REQUIRED)
find_package(gRPC CONFIG REQUIRED)             # gRPC::grpc++, gRPC::grpc++_reflection, gRPC::grpc_cpp_plugin
if(OUTBOX_BUILD_TESTS)
  find_package(Catch2 2.13 REQUIRED)
  include(Catch)
endif()
