// The translation unit that builds the suites' shared precompiled header (see test/CMakeLists.txt).
