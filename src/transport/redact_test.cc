#include "transport/redact.h"

#include <string>

#include <doctest/doctest.h>

#include "test_util.h"

namespace {

constexpr std::string_view kKey = "sk-proj-Abc123XyZ789secretKEYwxyz1234";

std::string Scrubbed(std::string text, std::string_view secret = kKey) {
  Redactor(secret).Scrub(&text);
  return text;
}

}  // namespace

TEST_CASE("Redactor replaces the secret, whole or in runs of 8 characters") {
  CHECK(Scrubbed("Incorrect API key provided: sk-proj-Abc123XyZ789secretKEYwxyz1234. "
                 "You can find your API key at https://platform.openai.com/account/api-keys.") ==
        "Incorrect API key provided: [redacted]. You can find your API key at "
        "https://platform.openai.com/account/api-keys.");
  // OpenAI's masking: the first 8 and the last 4 characters.
  CHECK(Scrubbed("Incorrect API key provided: sk-proj-************************1234.") ==
        "Incorrect API key provided: [redacted]************************1234.");
  // Any 8 consecutive characters, anywhere, as often as they come.
  CHECK(Scrubbed("a 789secre b KEYwxyz1 c") == "a [redacted] b [redacted] c");
  CHECK(Scrubbed("keysk-proj-Abc123XyZ789secretKEYwxyz1234sk-proj-Abc") ==
        "key[redacted]");
  // Seven are not a run; nor are characters of it out of order.
  CHECK(Scrubbed("sk-proj- is 8, sk-proj is 7") == "[redacted] is 8, sk-proj is 7");
  CHECK(Scrubbed("1234wxyzYEKterces") == "1234wxyzYEKterces");
  CHECK(Scrubbed("") == "");
  CHECK(Scrubbed("short") == "short");
}

TEST_CASE("Redactor replaces a key shorter than a run whole; none, nothing") {
  CHECK(Scrubbed("k3y: k3y, k3", "k3y") == "[redacted]: [redacted], k3");
  CHECK(Scrubbed("anything at all", "") == "anything at all");
}

TEST_CASE("The redacting transport scrubs what may become a message") {
  FakeClock clock;
  const std::string echo = "Incorrect API key provided: " + std::string(kKey) + ".";
  auto inner = std::make_unique<FakeTransport>(&clock, [&](const HttpRequest& r) {
    HttpResponse response;
    if (r.url == "error") {
      response.status = 401;
      response.body = R"({"error":{"message":")" + echo + R"("}})";
      response.headers = {{"location", echo}};
    } else if (r.url == "down") {
      response.transport_error = "Received HTTP code 407 from proxy: " + echo;
    } else {
      // A success is left alone: vectors, whatever their bytes.
      response.status = 200;
      response.body = std::string(kKey);
    }
    return response;
  });
  FakeTransport* fake = inner.get();
  std::unique_ptr<Transport> t = NewRedactingTransport(std::move(inner), kKey);
  HttpRequest request;
  request.headers = {"Authorization: Bearer " + std::string(kKey)};
  for (const char* url : {"error", "down", "ok"}) {
    request.url = url;
    t->Start(0, request);
  }
  CHECK(t->active() == 3);
  bool ready;
  t->Wait(0, -1, &ready);
  HttpResponse r;
  uint64_t tag;
  REQUIRE(t->NextFinished(&tag, &r));
  CHECK(r.body == R"({"error":{"message":"Incorrect API key provided: [redacted]."}})");
  CHECK(r.headers[0].second == "Incorrect API key provided: [redacted].");
  REQUIRE(t->NextFinished(&tag, &r));
  CHECK(r.transport_error ==
        "Received HTTP code 407 from proxy: Incorrect API key provided: [redacted].");
  REQUIRE(t->NextFinished(&tag, &r));
  CHECK(r.body == kKey);
  CHECK_FALSE(t->NextFinished(&tag, &r));
  // The key still goes out in the request.
  CHECK(fake->sent[0].headers == request.headers);
}

TEST_CASE("WithoutCredentials drops everything before the last '@'") {
  CHECK(WithoutCredentials("https://me:pw@host:8443/v1") == "https://host:8443/v1");
  CHECK(WithoutCredentials("http://me:p/w?#@host/v1") == "http://host/v1");
  CHECK(WithoutCredentials("me:pw@proxy:3128") == "proxy:3128");
  CHECK(WithoutCredentials("https://host/v1") == "https://host/v1");
}
