// What embedding models cost: the one table of list prices that the summary,
// --stats and --dry-run estimate cost from. --price overrides it.
#pragma once

#include <string_view>

/// Sets *usd_per_million to the list price of `model`, in US dollars per
/// million input tokens. False for a model the table does not know.
bool LookupPrice(std::string_view model, double* usd_per_million);
