#ifndef PARE_CLIBDEFLATE_SHIM_H
#define PARE_CLIBDEFLATE_SHIM_H
// libdeflate from Debian's libdeflate-dev: zlib-format deflate and CRC-32 for the .pare format,
// whole buffers at a time (what .pare streams are), several times faster than zlib's.
#include <libdeflate.h>
#endif
