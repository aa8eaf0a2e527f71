// A check of an LMDB 0.9 data file made before LMDB maps it.
//
// LMDB trusts its file: it maps it and follows page numbers, so a file cut
// short or a damaged B-tree page makes it read past the end of the file,
// which kills the process with SIGBUS before any error can be returned.
// This check reads the file with plain reads instead: the two meta pages
// (magic, version, page size), the file's size against the last page the
// newer meta page says is in use, then every page of the free-page, main
// and named trees (page numbers, page headers, node offsets and sizes,
// overflow runs, the sub-database records), so that what LMDB maps
// afterwards stays inside the file. A failure names the file and what is
// wrong with it.
//
// It knows LMDB 0.9's on-disk layout on 64-bit little-endian machines (the
// one Debian and every coordd build uses) and no more: databases with
// duplicate keys (MDB_DUPSORT) are reported as damage, since the log store
// never creates them.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "coord/base/status.h"

namespace coord::io {

// Reads `len` bytes at `offset` into `out`; false when they are not all in
// the image.
using LmdbImageReader =
    std::function<bool(std::uint64_t offset, std::size_t len, std::string& out)>;

// Checks an image of `image_bytes` bytes read through `read`. `name` only
// labels the errors.
Status check_lmdb_image(const std::string& name, std::uint64_t image_bytes,
                        const LmdbImageReader& read);

// Checks the file at `path`. A missing or empty file is fine: LMDB creates
// a new environment there.
Status check_lmdb_file(const std::string& path);

}  // namespace coord::io
