// SHA-256 (FIPS 180-4) with a streaming interface. The checkpoint journal
// keys records by the SHA-256 of the run's settings and a normalized text;
// a state that has absorbed the settings is copied once per text.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256() { Reset(); }

  /// Starts a new message (the state of a default-constructed object).
  void Reset();

  /// Absorbs `n` more bytes of the message. Any split of a message into
  /// Update calls gives the same digest.
  void Update(const void* data, size_t n);
  void Update(std::string_view data) { Update(data.data(), data.size()); }

  /// Pads the message and returns its digest. The object then holds a
  /// finished state: call Reset() before using it for another message.
  /// Copying an object before Final() forks the message (a shared prefix).
  Digest Final();

 private:
  uint32_t state_[8];
  uint64_t length_;        ///< Bytes absorbed so far.
  uint8_t buffer_[64];     ///< A partial block.
  size_t buffered_;        ///< Bytes used in buffer_.
};

/// The digest of `data` in one call.
Sha256::Digest Sha256Of(std::string_view data);

/// Lower-case hex of a digest (64 characters), for messages and tests.
std::string HexDigest(const Sha256::Digest& digest);
