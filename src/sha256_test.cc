#include "sha256.h"

#include <string>

#include <doctest/doctest.h>

// FIPS 180-2 appendix B / NIST CAVS example vectors.
TEST_CASE("Sha256 matches the NIST vectors") {
  CHECK(HexDigest(Sha256Of("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(HexDigest(Sha256Of("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(HexDigest(Sha256Of(
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(HexDigest(Sha256Of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklm"
                           "ghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                           "mnopqrstnopqrstu")) ==
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  CHECK(HexDigest(Sha256Of(std::string(1000000, 'a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
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
