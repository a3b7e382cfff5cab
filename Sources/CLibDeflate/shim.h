#ifndef PARE_CZLIB_SHIM_H
#define PARE_CZLIB_SHIM_H
// zlib from Debian's zlib1g-dev: deflate streams and CRC-32 for the .pare format.
#include <zlib.h>
#endif
