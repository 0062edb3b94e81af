// Helpers shared by the codec unit tests: a config, a batch of texts, a
// response, and whether a header line was sent.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>

#include "providers/codec.h"

/// The settings an OpenAI-style codec reads; the rest left at defaults.
inline CodecConfig ConfigFor(std::string base_url, std::string model,
                             int dimensions, bool base64, std::string api_key) {
  CodecConfig c;
  c.base_url = std::move(base_url);
  c.model = std::move(model);
  c.dimensions = dimensions;
  c.base64 = base64;
  c.api_key = std::move(api_key);
  return c;
}

inline Batch TextBatch(std::initializer_list<const char*> texts) {
  Batch b;
  for (const char* t : texts) {
    Record r;
    r.seq = b.records.size();
    r.text = t;
    b.bytes += r.text.size();
    b.records.push_back(std::move(r));
  }
  return b;
}

inline HttpResponse Reply(long status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

inline bool HasHeader(const HttpRequest& request, const std::string& line) {
  return std::find(request.headers.begin(), request.headers.end(), line) !=
         request.headers.end();
}
