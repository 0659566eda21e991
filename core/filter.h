// Server-side event filters.
//
// Grammar (JSON object, every key optional; see docs/FILTERS.md):
//   event_types, session_ids (or session_id: one string), agent_ids,
//   tool_names, statuses, models, feature_ids : arrays of strings; an event
//       matches when its field is one of the listed values (an empty list
//       matches nothing; leave the key out to match any value)
//   cost_threshold_tokens : integer >= 0; matches when cost_tokens > it
//   min_duration_ms       : number >= 0; matches when duration_ms >= it
//   any                   : non-empty array of filters; matches when one does
// All present keys combine with AND. `{}` matches everything.
// Unknown keys, wrong types and an empty `any` are errors that name the key.
//
// Matches() never allocates. A Filter is an immutable value: copy it freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/status.h"

namespace tailbus {

struct FilterLimits {
  size_t max_values_per_list = 1'000;  // most values in one list
  size_t max_any = 32;                 // most sub-filters in one `any`
  size_t max_any_depth = 4;            // `any` inside `any` inside …
  size_t max_json_bytes = 64 * 1024;   // largest filter text
};

class Filter {
 public:
  Filter() = default;  // matches everything

  // Parses a filter. `path` prefixes error messages: Parse("{\"x\":1}", "filter")
  // fails with "filter.x: unknown key".
  static Result<Filter> Parse(std::string_view json, std::string_view path = "filter",
                              const FilterLimits& limits = {});

  bool Matches(const EventFields& event) const noexcept;

  // Canonical JSON: keys in a fixed order, lists sorted and de-duplicated,
  // absent keys omitted; `session_id` is written as `session_ids`.
  // Parse(f.ToJson()) equals f.
  std::string ToJson() const;

  bool MatchesEverything() const;

  // The top-level session_ids list, or an empty list when sessions are not
  // constrained at the top level (or constrained to none). Storage reads
  // through the per-session index when it is non-empty.
  const std::vector<std::string>& session_ids() const;

  // This filter further restricted to one session (AND). Used by endpoints
  // bound to a session: nothing in the filter can widen it.
  Filter RestrictedToSession(std::string_view session_id) const;

  bool operator==(const Filter& other) const = default;

 private:
  using List = std::optional<std::vector<std::string>>;  // nullopt: unconstrained

  List event_types_;
  List session_ids_;
  List agent_ids_;
  List tool_names_;
  List statuses_;
  List models_;
  List feature_ids_;
  std::optional<int64_t> cost_threshold_tokens_;
  std::optional<double> min_duration_ms_;
  std::vector<Filter> any_;

  friend class FilterParser;
};

}  // namespace tailbus
