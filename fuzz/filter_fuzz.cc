// Fuzzes the filter parser (core/filter.h). Invariants:
// - a rejected filter's message starts with the path given ("filter") and
//   says something after it;
// - the canonical JSON round-trips: Parse(ToJson(f)) == f, and ToJson is a
//   fixed point; so does a filter restricted to a session;
// - Matches() agrees between f and its round-tripped copy on a few events
//   built from the input's own bytes.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/filter.h"
#include "fuzz/fuzz_check.h"

namespace {

using tailbus::EventFields;
using tailbus::Filter;

void CheckRoundTrip(const Filter& f) {
  const std::string json = f.ToJson();
  tailbus::Result<Filter> again = Filter::Parse(json);
  FUZZ_CHECK(again.ok(), "canonical JSON rejected: %s -> %s", json.c_str(),
             again.status().ToString().c_str());
  FUZZ_CHECK(*again == f, "Parse(ToJson(f)) != f for %s", json.c_str());
  FUZZ_CHECK(again->ToJson() == json, "ToJson not a fixed point: %s -> %s", json.c_str(),
             again->ToJson().c_str());
  FUZZ_CHECK(again->MatchesEverything() == f.MatchesEverything());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  tailbus::Result<Filter> parsed = Filter::Parse(input, "filter");
  if (!parsed.ok()) {
    const std::string& msg = parsed.status().message();
    FUZZ_CHECK(msg.rfind("filter", 0) == 0 && msg.size() > 8, "message names no key: %s",
               msg.c_str());
    return 0;
  }
  const Filter& f = *parsed;
  CheckRoundTrip(f);
  // Events whose strings come from the input, so list matches are exercised.
  const std::string_view a = input.substr(0, size / 2);
  const std::string_view b = input.substr(size / 2);
  for (const std::string_view& s : {a, b, std::string_view("s1")}) {
    for (int64_t cost : {int64_t{0}, int64_t{10}, INT64_MAX}) {
      EventFields e{s, s, s, s, s, s, s, cost, static_cast<double>(cost)};
      const Filter round = *Filter::Parse(f.ToJson());
      FUZZ_CHECK(f.Matches(e) == round.Matches(e));
      if (!tailbus::fuzz::IsValidUtf8(s)) continue;  // session ids are UTF-8 (decoder, query)
      const Filter restricted = f.RestrictedToSession(s);
      CheckRoundTrip(restricted);
      FUZZ_CHECK(!restricted.Matches(e) || f.Matches(e), "restricting widened the filter");
    }
  }
  return 0;
}
