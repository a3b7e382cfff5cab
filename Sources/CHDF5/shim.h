#ifndef PARE_CHDF5_SHIM_H
#define PARE_CHDF5_SHIM_H

// Swift cannot import HDF5's object-like macros (H5T_NATIVE_FLOAT, H5P_DEFAULT, ...), the
// versioned API macros, nor the globals before H5open() has run. These helpers expose them.
#include <hdf5.h>
#include <string.h>

static inline herr_t shim_open(void) { return H5open(); }

static inline hid_t shim_P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t shim_S_ALL(void) { return H5S_ALL; }
static inline hid_t shim_P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t shim_P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t shim_P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t shim_P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t shim_P_ATTRIBUTE_CREATE(void) { return H5P_ATTRIBUTE_CREATE; }
static inline unsigned shim_F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned shim_F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned shim_F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned shim_F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline size_t shim_T_VARIABLE(void) { return H5T_VARIABLE; }

static inline hid_t shim_T_C_S1(void) { return H5T_C_S1; }
static inline hid_t shim_T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t shim_T_IEEE_F16LE_make(void) {
    // HDF5 1.10 has no predefined half type; h5py builds this one (IEEE binary16, little-endian).
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}
static inline hid_t shim_T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t shim_T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t shim_T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t shim_T_STD_I16LE(void) { return H5T_STD_I16LE; }
static inline hid_t shim_T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t shim_T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t shim_T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t shim_T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t shim_T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t shim_T_STD_U64LE(void) { return H5T_STD_U64LE; }

/// Turns off HDF5's automatic printing of error stacks; failures become typed Swift errors.
static inline herr_t shim_clear_errors(void) { return H5Eclear2(H5E_DEFAULT); }
static inline herr_t shim_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct { char *buf; size_t len; int depth; } shim_error_sink;

static herr_t shim_error_walker(unsigned n, const H5E_error2_t *err, void *data) {
    shim_error_sink *sink = (shim_error_sink *)data;
    // The innermost entry (walking upward, the first one) names the real cause.
    if (sink->depth == 0 && err && err->desc) {
        strncpy(sink->buf, err->desc, sink->len - 1);
        sink->buf[sink->len - 1] = 0;
    }
    sink->depth++;
    (void)n;
    return 0;
}

/// Copies the most specific message of the current error stack into buf (empty if none).
static inline void shim_last_error(char *buf, size_t len) {
    if (len == 0) return;
    buf[0] = 0;
    shim_error_sink sink = { buf, len, 0 };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, shim_error_walker, &sink);
    H5Eclear2(H5E_DEFAULT);
}

static inline int shim_num_attrs(hid_t obj) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(obj, &info, H5O_INFO_NUM_ATTRS) < 0) return -1;
#else
    H5O_info_t info;
    if (H5Oget_info(obj, &info) < 0) return -1;
#endif
    return (int)info.num_attrs;
}

static inline herr_t shim_vlen_reclaim(hid_t type, hid_t space, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type, space, H5P_DEFAULT, buf);
#else
    return H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
}

static inline hid_t shim_file_image_fapl(void *image, size_t size) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || H5Pset_file_image(fapl, image, size) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

#endif
