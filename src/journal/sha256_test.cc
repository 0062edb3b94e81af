#include "journal/sha256.h"

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

namespace {

struct Vector {
  std::string message;
  const char* digest;
};

// FIPS 180-2 appendix B / NIST CAVS example vectors.
std::vector<Vector> NistVectors() {
  return {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
}

Sha256::Digest DigestWith(Sha256::Impl impl, std::string_view data) {
  Sha256 hash(impl);
  hash.Update(data);
  return hash.Final();
}

std::string RandomBytes(std::mt19937* rng, size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>((*rng)() & 0xFF);
  return out;
}

}  // namespace

TEST_CASE("Sha256 matches the NIST vectors") {
  for (const Vector& v : NistVectors()) {
    CAPTURE(v.message.size());
    CHECK(HexDigest(Sha256Of(v.message)) == v.digest);
    CHECK(HexDigest(DigestWith(Sha256::Impl::kPortable, v.message)) ==
          v.digest);
  }
}

TEST_CASE("Sha256 SHA-NI code gives the portable code's digests") {
  if (!Sha256::Supported(Sha256::Impl::kShaNi)) {
    MESSAGE("skipped: this CPU has no SHA extensions");
    return;
  }
  const Sha256::Impl kShaNi = Sha256::Impl::kShaNi;
  const Sha256::Impl kPortable = Sha256::Impl::kPortable;
  for (const Vector& v : NistVectors()) {
    CAPTURE(v.message.size());
    CHECK(HexDigest(DigestWith(kShaNi, v.message)) == v.digest);
  }

  // Every length up to almost five blocks: the padding takes one last
  // block or two, after zero to four whole ones.
  std::mt19937 rng(1);
  for (size_t len = 0; len <= 300; ++len) {
    std::string message = RandomBytes(&rng, len);
    CAPTURE(len);
    CHECK(DigestWith(kShaNi, message) == DigestWith(kPortable, message));
  }

  // The journal's shape: a state that has absorbed a prefix is copied, and
  // the copy takes the rest, here in two pieces split anywhere. So runs of
  // whole blocks come after 0..63 buffered bytes, and the last piece may
  // complete a block or not.
  std::string message = RandomBytes(&rng, 1000);
  Sha256::Digest expected = DigestWith(kPortable, message);
  for (size_t prefix : {0, 1, 55, 63, 64, 65, 181, 640}) {
    Sha256 absorbed(kShaNi);
    absorbed.Update(message.data(), prefix);
    for (size_t split = prefix; split <= message.size(); ++split) {
      Sha256 hash = absorbed;
      hash.Update(message.data() + prefix, split - prefix);
      hash.Update(message.data() + split, message.size() - split);
      CAPTURE(prefix);
      CAPTURE(split);
      CHECK(hash.Final() == expected);
    }
  }
}

TEST_CASE("Sha256 streaming: any split gives the same digest") {
  // 1,000,000 'a' fed in uneven pieces crosses block boundaries every way.
  Sha256 hash;
  std::string piece(997, 'a');
  size_t fed = 0;
  for (size_t n = 1; fed < 1000000; n = n % 997 + 1) {
    size_t take = std::min(n, 1000000 - fed);
    hash.Update(piece.data(), take);
    fed += take;
  }
  CHECK(HexDigest(hash.Final()) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  // Lengths around the padding boundary (55, 56, 63, 64, 65 bytes).
  for (size_t len : {55u, 56u, 63u, 64u, 65u, 119u, 120u}) {
    std::string text(len, 'x');
    for (size_t split = 0; split <= len; ++split) {
      Sha256 h;
      h.Update(std::string_view(text).substr(0, split));
      h.Update(std::string_view(text).substr(split));
      CHECK(h.Final() == Sha256Of(text));
    }
  }
}

TEST_CASE("Sha256 copied state forks a shared prefix; Reset starts over") {
  Sha256 prefix;
  prefix.Update("abcdbcdecdefdefgefghfghighijhijk");
  Sha256 fork = prefix;
  fork.Update("ijkljklmklmnlmnomnopnopq");
  CHECK(HexDigest(fork.Final()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  prefix.Reset();
  prefix.Update("abc");
  CHECK(HexDigest(prefix.Final()) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
