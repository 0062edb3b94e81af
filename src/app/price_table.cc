#include "app/price_table.h"

namespace {

struct ModelPrice {
  std::string_view model;
  double usd_per_million;
};

// Standard (not Batch API) list prices per million input tokens, from the
// providers' pricing pages as of 2026-11. Embeddings bill input only.
constexpr ModelPrice kPrices[] = {
    {"text-embedding-3-small", 0.02},
    {"text-embedding-3-large", 0.13},
    {"text-embedding-ada-002", 0.10},
};

}  // namespace

bool LookupPrice(std::string_view model, double* usd_per_million) {
  for (const ModelPrice& p : kPrices) {
    if (p.model == model) {
      *usd_per_million = p.usd_per_million;
      return true;
    }
  }
  return false;
}
