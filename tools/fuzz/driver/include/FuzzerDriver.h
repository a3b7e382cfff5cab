#ifndef PARE_FUZZER_DRIVER_H
#define PARE_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>
/// libFuzzer's entry for programs with their own main (compiler-rt, FuzzerInterface.h). SwiftPM
/// gives every executable a main of its own, so the harnesses start libFuzzer through this.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
#endif
