// Declarations only (include/FuzzerDriver.h); libFuzzer defines them when built with -sanitize=fuzzer.
#include "FuzzerDriver.h"
