// Helpers shared by the codec unit tests: a batch of texts, a response,
// and whether a header line was sent.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <utility>

#include "codec.h"

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
