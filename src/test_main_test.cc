// The doctest runner for every *_test.cc in src/ and its stage folders.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
