// SHA-256 (FIPS 180-4) with a streaming interface. The checkpoint journal
// keys records by the SHA-256 of the run's settings and a normalized text;
// a state that has absorbed the settings is copied once per text. Blocks
// are compressed with the x86 SHA extensions where the CPU has them (six
// times as fast on an AMD EPYC) and by portable code elsewhere.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  /// The code that compresses blocks. All give the same digests.
  enum class Impl {
    kPortable,  ///< Plain C++, for any CPU.
    kShaNi,     ///< x86-64 SHA extensions (SHA256RNDS2 and friends).
  };

  /// True if `impl` runs on this CPU. The CPU is examined once.
  static bool Supported(Impl impl);

  /// Uses kShaNi where it is Supported, kPortable elsewhere.
  Sha256();

  /// Uses `impl`, which must be Supported. For tests, which compare the
  /// implementations; everything else takes the default.
  explicit Sha256(Impl impl);

  /// Starts a new message (the state of a newly constructed object; the
  /// implementation stays).
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
  /// Compresses `count` 64-byte blocks from `blocks` into `state`.
  using CompressFn = void (*)(uint32_t* state, const uint8_t* blocks,
                              size_t count);

  CompressFn compress_;    ///< Chosen by the constructor; copies keep it.
  uint32_t state_[8];
  uint64_t length_;        ///< Bytes absorbed so far.
  uint8_t buffer_[64];     ///< A partial block.
  size_t buffered_;        ///< Bytes used in buffer_.
};

/// The digest of `data` in one call.
Sha256::Digest Sha256Of(std::string_view data);

/// Lower-case hex of a digest (64 characters), for messages and tests.
std::string HexDigest(const Sha256::Digest& digest);
