// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) in software, the
// checksum that frames every checkpoint journal record. Software tables
// keep the journal format independent of the CPU it was written on.
#pragma once

#include <cstddef>
#include <cstdint>

/// Extends `crc` (the value returned for the bytes before `data`; 0 for
/// none) by `n` bytes. Crc32cExtend(Crc32cExtend(0, a), b) equals the CRC of
/// a followed by b.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

/// CRC-32C of `n` bytes: Crc32c("123456789", 9) == 0xE3069283.
inline uint32_t Crc32c(const void* data, size_t n) {
  return Crc32cExtend(0, data, n);
}
