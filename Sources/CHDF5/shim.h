#ifndef PARE_CHDF5_SHIM_H
#define PARE_CHDF5_SHIM_H

// Swift cannot import HDF5's object-like macros (H5T_NATIVE_FLOAT, H5P_DEFAULT, ...), the
// versioned API macros, nor the globals before H5open() has run. These helpers expose them.
#include <hdf5.h>
#include <string.h>

// MARK: Reading only the file given (hostile files)

/// External links would open another file: every traversal is refused (the callback's failure
/// fails the open), so a link to /etc/passwd or a FIFO is never followed. Every object Pare opens
/// by path goes through a link access list with this callback (`shim_safe_lapl`).
static inline herr_t shim_refuse_external_link(const char *parent_file, const char *parent_group,
                                               const char *child_file, const char *child_object,
                                               unsigned *acc_flags, hid_t fapl, void *data) {
    (void)parent_file; (void)parent_group; (void)child_file; (void)child_object; (void)acc_flags; (void)fapl;
    (void)data;
    return -1;
}

/// A link access property list for opening objects: no external links, at most 16 soft links in a row.
static inline hid_t shim_safe_lapl(void) {
    hid_t lapl = H5Pcreate(H5P_LINK_ACCESS);
    if (lapl < 0) return lapl;
    if (H5Pset_elink_cb(lapl, shim_refuse_external_link, NULL) < 0 || H5Pset_nlinks(lapl, 16) < 0) {
        H5Pclose(lapl);
        return -1;
    }
    return lapl;
}

/// Filter plugins are shared libraries HDF5 would load from disk for an unknown filter id: never.
static inline herr_t shim_disable_plugins(void) { return H5PLset_loading_state(0); }

// MARK: Listing in one pass (names by index are quadratic on large groups)

typedef void (*shim_name_sink)(const char *name, int link_type, void *context);

static inline herr_t shim_link_visitor(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    void **pair = (void **)data;
    ((shim_name_sink)pair[0])(name, (int)info->type, pair[1]);
    (void)group;
    return 0;
}

/// Calls sink(name, link type) for each link of the group, in name order. Link types:
/// 0 hard, 1 soft, 64 external, others user-defined.
static inline herr_t shim_list_links(hid_t group, shim_name_sink sink, void *context) {
    void *pair[2] = { (void *)sink, context };
    hsize_t index = 0;
#if H5_VERSION_GE(1, 12, 0)
    return H5Literate1(group, H5_INDEX_NAME, H5_ITER_INC, &index, shim_link_visitor, pair);
#else
    return H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &index, shim_link_visitor, pair);
#endif
}

static inline herr_t shim_attribute_visitor(hid_t object, const char *name, const H5A_info_t *info, void *data) {
    void **pair = (void **)data;
    ((shim_name_sink)pair[0])(name, 0, pair[1]);
    (void)object; (void)info;
    return 0;
}

/// Calls sink(name, 0) for each attribute of the object, in name order.
static inline herr_t shim_list_attributes(hid_t object, shim_name_sink sink, void *context) {
    void *pair[2] = { (void *)sink, context };
    hsize_t index = 0;
    return H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, shim_attribute_visitor, pair);
}

/// The object's file number and address: equal pairs are the same object (hard links, cycles).
static inline herr_t shim_object_identity(hid_t object, unsigned long *fileno, unsigned long long *address) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(object, &info, H5O_INFO_BASIC) < 0) return -1;
    haddr_t addr = 0;
    memcpy(&addr, &info.token, sizeof(addr) < sizeof(info.token) ? sizeof(addr) : sizeof(info.token));
    *address = (unsigned long long)addr;
#else
    H5O_info_t info;
    if (H5Oget_info2(object, &info, H5O_INFO_BASIC) < 0) return -1;
    *address = (unsigned long long)info.addr;
#endif
    *fileno = (unsigned long)info.fileno;
    return 0;
}

/// Where a dataset's bytes live: 0 inside the file, 1 in external raw files, 2 a virtual dataset
/// (mapped from other datasets, possibly in other files), -1 on error.
static inline int shim_dataset_storage(hid_t dataset) {
    hid_t dcpl = H5Dget_create_plist(dataset);
    if (dcpl < 0) return -1;
    int result = 0;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout < 0) {
        result = -1;
    } else if (layout == H5D_VIRTUAL) {
        result = 2;
    } else {
        int external = H5Pget_external_count(dcpl);
        result = external < 0 ? -1 : external > 0 ? 1 : 0;
    }
    H5Pclose(dcpl);
    return result;
}

/// Where a dataset's bytes can be read with one pread instead of H5Dread: only when the bytes on
/// disk are exactly what H5Dread would return. That needs a contiguous layout with no filters and no
/// external files, storage allocated (an unallocated dataset reads as its fill value), a stored size
/// equal to the bytes asked for (HDF5 does not check a contiguous layout's size against the shape),
/// inside the file's allocated space, a file type equal to `memtype` (byte order included: HDF5
/// converts big-endian data), the sec2 driver (a plain descriptor; files opened from memory keep
/// H5Dread) and a file opened read-only.
/// Returns 1 and sets `fd` and `offset` (absolute: it includes a user block), 0 when H5Dread must
/// be used, 2 when the data lies outside the file's allocated space (a corrupt file: libhdf5 1.10
/// would read zeros there, later versions refuse it), -1 on error.
static inline int shim_direct_read_location(hid_t dataset, hid_t file, hid_t memtype, unsigned long long byte_count,
                                            int *fd, unsigned long long *offset) {
    hid_t dcpl = H5Dget_create_plist(dataset);
    if (dcpl < 0) return -1;
    int plain = H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl) == 0
        && H5Pget_external_count(dcpl) == 0;
    H5Pclose(dcpl);
    if (!plain) return 0;
    H5D_space_status_t status;
    if (H5Dget_space_status(dataset, &status) < 0) return -1;
    if (status != H5D_SPACE_STATUS_ALLOCATED || H5Dget_storage_size(dataset) != byte_count) return 0;
    hid_t ftype = H5Dget_type(dataset);
    if (ftype < 0) return -1;
    htri_t same = H5Tequal(ftype, memtype);
    H5Tclose(ftype);
    if (same <= 0) return same < 0 ? -1 : 0;
    haddr_t address = H5Dget_offset(dataset);
    if (address == HADDR_UNDEF) return 0;
    hid_t fapl = H5Fget_access_plist(file);
    if (fapl < 0) return -1;
    if (H5Pget_driver(fapl) != H5FD_SEC2) {
        H5Pclose(fapl);
        return 0;
    }
    // Bytes past the end of allocation are not the file's (H5Dread refuses or zero-fills them); the
    // end of allocation is relative to the base address (after a user block).
    hid_t fcpl = H5Fget_create_plist(file);
    hsize_t user_block = 0;
    haddr_t eoa = 0;
    unsigned intent = 0;
    int usable = fcpl >= 0 && H5Pget_userblock(fcpl, &user_block) >= 0 && H5Fget_eoa(file, &eoa) >= 0
        && H5Fget_intent(file, &intent) >= 0;
    if (fcpl >= 0) H5Pclose(fcpl);
    if (!usable) {
        H5Pclose(fapl);
        return -1;
    }
    if (address < user_block || address - user_block > eoa || byte_count > eoa - (address - user_block)) {
        H5Pclose(fapl);
        return 2;
    }
    // In a file open for writing, data written through HDF5 may still sit in its sieve buffer.
    if (intent != H5F_ACC_RDONLY) {
        H5Pclose(fapl);
        return 0;
    }
    void *handle = NULL;
    herr_t got = H5Fget_vfd_handle(file, fapl, &handle);
    H5Pclose(fapl);
    if (got < 0 || handle == NULL) return -1;
    *fd = *(int *)handle;
    *offset = (unsigned long long)address;
    return 1;
}

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
static inline hid_t shim_T_IEEE_F32BE(void) { return H5T_IEEE_F32BE; }
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
