#include "tokenize/tokenizer.h"

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <rapidjson/document.h>

namespace {

struct Golden {
  std::string text;
  std::vector<uint32_t> ids[2];  // Indexed by Encoding.
};

// tests/fixtures/tokens/golden.jsonl, made by scripts/gen-token-fixtures
// from tiktoken itself.
std::vector<Golden> ReadGolden() {
  std::vector<Golden> golden;
  std::ifstream in("tests/fixtures/tokens/golden.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    REQUIRE(doc.IsObject());
    Golden g;
    g.text.assign(doc["text"].GetString(), doc["text"].GetStringLength());
    for (Encoding e : {Encoding::kCl100kBase, Encoding::kO200kBase}) {
      std::string name(EncodingName(e));
      for (const auto& id : doc[name.c_str()].GetArray())
        g.ids[static_cast<int>(e)].push_back(id.GetUint());
    }
    golden.push_back(std::move(g));
  }
  return golden;
}

}  // namespace

TEST_CASE("Tokenizer gives tiktoken's ids on every golden string") {
  std::vector<Golden> golden = ReadGolden();
  REQUIRE(golden.size() >= 2000);
  for (Encoding e : {Encoding::kCl100kBase, Encoding::kO200kBase}) {
    CAPTURE(EncodingName(e));
    const Tokenizer& tokenizer = Tokenizer::Get(e);
    size_t mismatches = 0;
    for (const Golden& g : golden) {
      std::vector<uint32_t> ids;
      tokenizer.Encode(g.text, &ids);
      std::string decoded;
      tokenizer.Decode(ids, &decoded);
      if (ids != g.ids[static_cast<int>(e)] ||
          tokenizer.Count(g.text) != ids.size() || decoded != g.text) {
        ++mismatches;
        CHECK_MESSAGE(false, "mismatch on: " << g.text.substr(0, 200));
      }
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("Tokenizer treats special-token text as plain text") {
  std::vector<uint32_t> ids;
  Tokenizer::Get(Encoding::kCl100kBase).Encode("<|endoftext|>", &ids);
  CHECK(ids == std::vector<uint32_t>{27, 91, 8862, 728, 428, 91, 29});
}

TEST_CASE("Tokenizer decodes prefixes at token boundaries") {
  const Tokenizer& tokenizer = Tokenizer::Get(Encoding::kO200kBase);
  std::string text = "Hello, world! \xE4\xB8\xAD\xE6\x96\x87 text";
  std::vector<uint32_t> ids;
  tokenizer.Encode(text, &ids);
  for (size_t k = 0; k <= ids.size(); ++k) {
    std::span<const uint32_t> prefix(ids.data(), k);
    std::string bytes;
    tokenizer.Decode(prefix, &bytes);
    CHECK(bytes.size() == tokenizer.DecodedSize(prefix));
    CHECK(text.starts_with(bytes));
  }
  CHECK(tokenizer.DecodedSize(ids) == text.size());
  CHECK(tokenizer.TokenBytes(ids[0]) == "Hello");
  CHECK(tokenizer.vocab_size() == 199998);
  CHECK(Tokenizer::Get(Encoding::kCl100kBase).vocab_size() == 100256);
}

TEST_CASE("Tokenizer encodes invalid UTF-8 byte for byte") {
  const Tokenizer& tokenizer = Tokenizer::Get(Encoding::kCl100kBase);
  std::string text = "ok \xFF\xC3 \xE4\xB8 x\xED\xA0\x80 y";
  std::vector<uint32_t> ids;
  tokenizer.Encode(text, &ids);
  std::string decoded;
  tokenizer.Decode(ids, &decoded);
  CHECK(decoded == text);
}

TEST_CASE("Encodings by name and by model follow tiktoken's map") {
  Encoding e;
  CHECK(EncodingByName("cl100k_base", &e));
  CHECK(e == Encoding::kCl100kBase);
  CHECK(EncodingByName("o200k_base", &e));
  CHECK(e == Encoding::kO200kBase);
  CHECK_FALSE(EncodingByName("p50k_base", &e));

  const char* cl100k[] = {"text-embedding-ada-002", "text-embedding-3-small",
                          "text-embedding-3-large", "gpt-4", "gpt-4-0613",
                          "gpt-3.5-turbo", "gpt-3.5-turbo-16k", "ft:gpt-4:org"};
  for (const char* model : cl100k) {
    CAPTURE(model);
    REQUIRE(EncodingForModel(model, &e));
    CHECK(e == Encoding::kCl100kBase);
  }
  const char* o200k[] = {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-nano",
                         "gpt-5", "gpt-5-mini", "o1", "o1-mini", "o3",
                         "o3-mini", "o4-mini", "o4-mini-2025-04-16",
                         "chatgpt-4o-latest", "ft:gpt-4o-mini:org"};
  for (const char* model : o200k) {
    CAPTURE(model);
    REQUIRE(EncodingForModel(model, &e));
    CHECK(e == Encoding::kO200kBase);
  }
  for (const char* model :
       {"", "text-embedding-3", "voyage-3", "o2", "gpt-4x"}) {
    CAPTURE(model);
    CHECK_FALSE(EncodingForModel(model, &e));
  }
}

TEST_CASE("Tokenizer encodes on many threads at once") {
  // Long pieces use per-thread scratch space.
  std::string text = std::string(300, ' ') + "\xE4\xB8\xAD\xE6\x96\x87" +
                     std::string(200, 'a') + " tail";
  std::vector<size_t> counts(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < counts.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i)
        counts[t] = Tokenizer::Get(Encoding::kO200kBase).Count(text);
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<uint32_t> ids;
  Tokenizer::Get(Encoding::kO200kBase).Encode(text, &ids);
  for (size_t count : counts) CHECK(count == ids.size());
}
