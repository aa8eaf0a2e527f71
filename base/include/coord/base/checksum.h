// CRC-32C (Castagnoli), the checksum on every peer frame, log record and
// snapshot of coord. Chosen over CRC-32 for its better error detection on
// the short records we write. Thread-safe: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace coord {

// Extends `crc` (the value returned for the bytes before) with `data`;
// start with 0. Uses the processor's CRC-32C instruction where it has one.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size);

// The same with lookup tables only, on any processor; for tests that
// check the two agree.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t size);
bool crc32c_hardware_available();

inline std::uint32_t crc32c(const void* data, std::size_t size) {
  return crc32c_extend(0, data, size);
}
inline std::uint32_t crc32c(std::string_view s) {
  return crc32c(s.data(), s.size());
}
inline std::uint32_t crc32c(std::span<const std::byte> s) {
  return crc32c(s.data(), s.size());
}

}  // namespace coord
