#include "journal/digest.h"

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
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
}

}  // namespace

TEST_CASE("Sha256 matches the NIST vectors, in one call and streamed") {
  for (const Vector& v : NistVectors()) {
    CAPTURE(v.message.size());
    CHECK(HexDigest(Sha256Of(v.message)) == v.digest);
    Sha256 hash;
    hash.Update(v.message);
    CHECK(HexDigest(hash.Final()) == v.digest);
  }
}

TEST_CASE("Sha256 streaming: any split gives the same digest") {
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

TEST_CASE("Sha256 copies fork a shared prefix; CopyFrom reuses a finished state") {
  Sha256 prefix;
  prefix.Update("abcdbcdecdefdefgefghfghighijhijk");
  Sha256 fork = prefix;
  fork.Update("ijkljklmklmnlmnomnopnopq");
  CHECK(HexDigest(fork.Final()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  // The prefix is untouched by its fork, and a finished state takes it again.
  fork.CopyFrom(prefix);
  fork.Update("ijkljklmklmnlmnomnopnopq");
  CHECK(HexDigest(fork.Final()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  Sha256 empty;
  Sha256 assigned;
  assigned.Update("something else");
  assigned = empty;
  assigned.Update("abc");
  CHECK(HexDigest(assigned.Final()) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
